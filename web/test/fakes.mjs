// Test doubles shared by the web client's unit tests: a WebSocket, manual
// timers and a fetch, all driven by the test.

export const SLUG = 'AbCdEfGhIjKlMnOpQrStUv';


/** A WebSocket stand-in that records what is sent and lets tests drive it. */
export class FakeWebSocket {
  /** @type {FakeWebSocket[]} */
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {string[]} */
    this.sent = [];
    this.closeCalls = [];
    FakeWebSocket.instances.push(this);
  }
  send(data) {
    this.sent.push(data);
  }
  close(code, reason) {
    this.closeCalls.push([code, reason]);
    this.readyState = 3;
  }
  // Test drivers.
  serverOpen() {
    this.readyState = 1;
    this.onopen?.({});
  }
  serverSend(obj) {
    this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) });
  }
  serverClose(code, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  get sentJson() {
    return this.sent.map((s) => JSON.parse(s));
  }
}

/** Manual timers and clock. */
export function fakeTimers() {
  let now = 1_000_000;
  let nextId = 1;
  /** @type {Map<number, {fn: () => void, ms: number, next: number, repeat: boolean}>} */
  const timers = new Map();
  return {
    now: () => now,
    setInterval(fn, ms) {
      const id = nextId++;
      timers.set(id, { fn, ms, next: now + ms, repeat: true });
      return id;
    },
    clearInterval(id) {
      timers.delete(id);
    },
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { fn, ms, next: now + ms, repeat: false });
      return id;
    },
    advance(ms) {
      const end = now + ms;
      for (;;) {
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

/** A fetch stand-in: answers from a handler and records requests. */
export function fakeFetch(handler) {
  const calls = [];
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
  fn.calls = calls;
  return fn;
}

export const participant = (id, name, extra = {}) => ({
  id,
  display_name: name,
  status: 'connected',
  media: { mic_muted: false, camera_muted: false, screen_sharing: false },
  tracks: [],
  joined_at_ms: 1000,
  ...extra,
});
