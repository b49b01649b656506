// The part of ts-mls the client uses, vendored by scripts/vendor-mls.sh
// (do not edit the files under this folder by hand). Importing single
// modules instead of ts-mls's index.js keeps the optional @noble packages
// (other ciphersuites) out of the page.
export { createGroup, joinGroup } from './ts-mls/clientState.js';
export { defaultClientConfig } from './ts-mls/clientConfig.js';
export { createCommit } from './ts-mls/createCommit.js';
export { processMessage } from './ts-mls/processMessages.js';
export { generateKeyPackageWithKey } from './ts-mls/keyPackage.js';
export { encodeMlsMessage, decodeMlsMessage } from './ts-mls/message.js';
export { mlsExporter } from './ts-mls/keySchedule.js';
export { getCiphersuiteFromName } from './ts-mls/crypto/ciphersuite.js';
export { getCiphersuiteImpl } from './ts-mls/crypto/getCiphersuiteImpl.js';
export { defaultCapabilities } from './ts-mls/defaultCapabilities.js';
export { defaultLifetime } from './ts-mls/lifetime.js';
export { emptyPskIndex } from './ts-mls/pskIndex.js';
export { acceptAll } from './ts-mls/incomingMessageAction.js';
export { zeroOutUint8Array } from './ts-mls/util/byteArray.js';
