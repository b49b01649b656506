// Test doubles shared by the web client's unit tests: a WebSocket, manual
// timers and a fetch, all driven by the test; and the fixtures several
// tests build on (a participant, a recorded file).

/** @typedef {import('../public/lib/types.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('../public/lib/recording-api.js').FileView} FileView */

export const SLUG = 'AbCdEfGhIjKlMnOpQrStUv';

/** A WebSocket stand-in that records what is sent and lets tests drive it. */
export class FakeWebSocket {
  /** @type {FakeWebSocket[]} */
  static instances = [];
  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {string[]} */
    this.sent = [];
    /** @type {[number | undefined, string | undefined][]} */
    this.closeCalls = [];
    /** @type {((ev: object) => void) | null} */
    this.onopen = null;
    /** @type {((ev: {data: any}) => void) | null} */
    this.onmessage = null;
    /** @type {((ev: {code: number, reason: string}) => void) | null} */
    this.onclose = null;
    /** @type {(() => void) | null} */
    this.onerror = null;
    FakeWebSocket.instances.push(this);
  }
  /** @param {string} data */
  send(data) {
    this.sent.push(data);
  }
  /**
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code, reason) {
    this.closeCalls.push([code, reason]);
    this.readyState = 3;
  }
  // Test drivers.
  serverOpen() {
    this.readyState = 1;
    this.onopen?.({});
  }
  /** @param {unknown} obj A frame: a string as is, anything else as JSON. */
  serverSend(obj) {
    this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
  }
  /**
   * @param {number} code
   * @param {string} [reason]
   */
  serverClose(code, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** @returns {any[]} */
  get sentJson() {
    return this.sent.map((s) => JSON.parse(s));
  }
}

/** @typedef {{fn: () => void, ms: number, next: number, repeat: boolean}} FakeTimer */

/** Manual timers and clock. */
export function fakeTimers() {
  let now = 1_000_000;
  let nextId = 1;
  /** @type {Map<number, FakeTimer>} */
  const timers = new Map();
  return {
    now: () => now,
    /**
     * @param {() => void} fn
     * @param {number} ms
     */
    setInterval(fn, ms) {
      const id = nextId++;
      timers.set(id, { fn, ms, next: now + ms, repeat: true });
      return id;
    },
    /** @param {number} id */
    clearInterval(id) {
      timers.delete(id);
    },
    /**
     * @param {() => void} fn
     * @param {number} ms
     */
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { fn, ms, next: now + ms, repeat: false });
      return id;
    },
    /** @param {number} ms Runs every timer due within `ms`, in time order. */
    advance(ms) {
      const end = now + ms;
      for (;;) {
        /** @type {[number, FakeTimer] | null} */
        let due = null;
        for (const [id, t] of timers) if (t.next <= end && (!due || t.next < due[1].next)) due = [id, t];
        if (!due) break;
        const [id, t] = due;
        now = t.next;
        if (t.repeat) t.next += t.ms;
        else timers.delete(id);
        t.fn();
      }
      now = end;
    },
    get pending() {
      return timers.size;
    },
  };
}

/**
 * @typedef {{status: number, body?: unknown}} FakeReply
 * @typedef {{url: string, init: any, body: any}} FakeCall
 */

/**
 * A fetch stand-in: answers from a handler and records requests. Typed as
 * `fetch` for the helpers it is passed to; it implements what they use.
 * @param {(url: string, init: any) => FakeReply | Promise<FakeReply>} handler
 * @returns {typeof fetch & {calls: FakeCall[]}}
 */
export function fakeFetch(handler) {
  /** @type {FakeCall[]} */
  const calls = [];
  /**
   * @param {any} url
   * @param {any} init
   */
  const fn = async (url, init) => {
    calls.push({ url, init, body: init?.body ? JSON.parse(init.body) : undefined });
    const r = await handler(url, init);
    return {
      ok: r.status >= 200 && r.status < 300,
      status: r.status,
      json: async () => {
        if (typeof r.body === 'string') return JSON.parse(r.body);
        return r.body;
      },
    };
  };
  return /** @type {any} */ (Object.assign(fn, { calls }));
}

/**
 * A participant as the node describes them.
 * @param {string} id
 * @param {string} name
 * @param {Partial<ParticipantInfo>} [extra]
 * @returns {ParticipantInfo}
 */
export const participant = (id, name, extra = {}) => ({
  id,
  display_name: name,
  status: 'connected',
  media: { mic_muted: false, camera_muted: false, screen_sharing: false },
  tracks: [],
  joined_at_ms: 1000,
  ...extra,
});

/** A recording's id, as in its URLs. */
export const RECORDING_ID = 'r0123456789abcdef';

/**
 * A file of recording [RECORDING_ID] as a view lists it: Ann's camera,
 * ten seconds from the recording's start, complete, with a share token in
 * its URL.
 * @param {Partial<FileView>} [over]
 * @returns {FileView}
 */
export function recordedFile(over = {}) {
  return {
    file_id: 'f0000000000000001',
    participant_id: 'p1',
    display_name: 'Ann',
    source: 'camera',
    offset_ms: 0,
    duration_ms: 10_000,
    bytes: 1000,
    segments: 1,
    state: 'complete',
    url: `/api/recordings/${RECORDING_ID}/files/f0000000000000001?share=minted`,
    ...over,
  };
}
