// What the room page knows that every view reads: the page's room, the
// person's name and the room as the server describes it. One object, so
// views share it without module-level variables of their own.

import * as proto from '../protocol.js';

const params = new URLSearchParams(location.search);

/** The room page's shared state. */
export const app = {
  /** The page's query parameters (`skipPrejoin`, `name`, `region`). */
  params,
  /** @type {string | null} The room slug from the path. */
  slug: proto.slugFromPath(location.pathname),
  /**
   * A region hint from the link (`?region=eu`), for deployments that hand
   * out per-site links; a load balancer's `X-Veche-Region` header wins.
   * @type {string | null}
   */
  regionHint: params.get('region') || null,
  /** @type {import('../protocol.js').RoomView | null} */
  room: null,
  /** The guest pass of the link (`?pass=`), sent with every join. */
  pass: params.get('pass') || null,
  /** @type {string | null} This browser's owner key for the room (ui/passes.js). */
  ownerKey: null,
  /** @type {{display_name: string} | null} The signed-in user, if any. */
  signedIn: null,
  displayName: '',
  /** @type {proto.RoomState} */
  roomState: new proto.RoomState(),
  /** True while the call has a joined session (tiles show "reconnecting" otherwise). */
  connected: false,
  /** Matches phones: one side panel at a time, full screen. */
  narrow: window.matchMedia('(max-width: 640px)'),
};
