// The outbox: every write waits here until the server has it. Per turn, at most one save and one
// working copy are pending (a newer one replaces the older); turns are sent in the order they were
// first queued, a turn's save before its working copy. A write that does not reach the server
// (Offline) stays, and the outbox tries again later, waiting longer each time up to maxDelay.
import {Offline} from "./api.js";

export class Outbox {
  constructor({sendSave, sendCopy, onOffline = () => {}, onBackOnline = () => {},
    setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (t) => clearTimeout(t), minDelay = 1000, maxDelay = 5000}) {
    Object.assign(this, {sendSave, sendCopy, onOffline, onBackOnline, setTimer, clearTimer, minDelay, maxDelay});
    this.pending = new Map(); // turn id -> {save, copy}
    this.retryDelay = minDelay;
    this.timer = null;
    this.offline = false;
    this.flushing = null;
  }

  get size() { return this.pending.size; }

  has(turnId) { return this.pending.has(turnId); }

  queue(turnId, parts) {
    const entry = this.pending.get(turnId) || {save: null, copy: null};
    Object.assign(entry, parts);
    this.pending.set(turnId, entry);
    if (!this.offline) this.schedule(0);
  }

  schedule(delay = 0) {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = this.setTimer(() => { this.timer = null; this.flush(); }, delay);
  }

  // Sends everything pending; resolves when done or when the network failed (then a retry is scheduled).
  flush() {
    if (!this.flushing) this.flushing = this.run().finally(() => { this.flushing = null; });
    return this.flushing;
  }

  async run() {
    try {
      for (const [turnId, entry] of this.pending) {
        if (entry.save) {
          const body = entry.save;
          await this.sendSave(turnId, body);
          if (entry.save === body) entry.save = null;
        }
        if (entry.copy) {
          const body = entry.copy;
          await this.sendCopy(turnId, body);
          if (entry.copy === body) entry.copy = null;
        }
        if (!entry.save && !entry.copy) this.pending.delete(turnId);
      }
      this.retryDelay = this.minDelay;
      if (this.offline) {
        this.offline = false;
        this.onBackOnline();
      }
    } catch (error) {
      if (!(error instanceof Offline)) throw error;
      this.offline = true;
      this.onOffline(this.retryDelay);
      this.schedule(this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, this.maxDelay);
      return;
    }
    if (this.pending.size) this.schedule(0); // queued while this flush was running
  }
}
