export { DEFAULT_STORE_TIMEOUT_MS, type Store } from './store.js';
export { MemoryStore, StoreTimeoutError } from './memory-store.js';
export { FileStore, type FileStoreOptions } from './file-store.js';
export { StoreServer, type StoreServerOptions } from './ws-server.js';
export { WsStore, connectStore, type WsStoreOptions } from './ws-client.js';
export {
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  type RequestOp,
  type StoreRequest,
  type StoreResponse,
} from './messages.js';
