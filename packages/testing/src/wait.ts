/** Polls `check` until it holds; fails with `message` after `timeoutMs`. For state with no event to wait on. */
export const waitFor = async (
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  message = 'condition not met in time',
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(message)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
