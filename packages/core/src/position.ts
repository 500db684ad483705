/** Where a topic's stream stands: `epoch` changes when its history is lost (a restart, a flush). */
export interface StreamPosition {
  readonly epoch: string
  readonly offset: number
}

/** Whether `position` already includes the message at `at`: same epoch, offset not past it. */
export const covers = (position: StreamPosition, at: StreamPosition): boolean =>
  position.epoch === at.epoch && at.offset <= position.offset
