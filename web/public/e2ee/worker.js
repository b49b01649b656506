// The SFrame media worker: page ↔ WorkerCore. Load it as a module worker
// (`new Worker(new URL('./e2ee/worker.js', import.meta.url), {type:
// 'module'})`) and use ONE worker for all tracks of the page: every track
// draws its SFrame counter from the same send key, so two workers would
// reuse nonces. Imports are relative: import maps do not apply in workers.
//
// Page → worker: {type:'epoch', epoch, exporter: ArrayBuffer, myLeaf},
// {type:'clear'}, {type:'stats', id?}, and for createEncodedStreams
// {type:'stream', side:'send'|'recv', kind, id?, readable, writable}
// (transfer the streams). RTCRtpScriptTransform(worker, {side, kind, id})
// arrives as an `rtctransform` event.
// Worker → page: {type:'stats', id?, epoch, counters},
// {type:'epoch', epoch, installed}, {type:'keyframe', side:'recv', kind, id}
// (a receiver lost frames; the worker already sent a keyframe request
// where the browser offers sendKeyFrameRequest), {type:'error', message}.

import { WorkerCore } from './worker-core.js';

/**
 * The worker global, typed by what is used (the DOM lib has no
 * DedicatedWorkerGlobalScope).
 * @type {{
 *   postMessage: (m: unknown) => void,
 *   onmessage: ((e: MessageEvent) => void) | null,
 *   onrtctransform?: ((e: {transformer: import('./worker-core.js').Transformer}) => void) | null,
 * }}
 */
const scope = /** @type {any} */ (globalThis);

const core = new WorkerCore((m) => scope.postMessage(m), () => performance.now());
scope.onmessage = (e) => {
  core.onMessage(e.data);
};
scope.onrtctransform = (e) => {
  core.attach(e.transformer);
};
