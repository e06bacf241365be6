export { XdrError } from './errors.js';
export { XdrReader } from './reader.js';
export { XdrWriter } from './writer.js';
