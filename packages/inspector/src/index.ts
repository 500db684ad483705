export type { InspectableHub, InspectorOptions } from './inspector.js'
export { inspector } from './inspector.js'
