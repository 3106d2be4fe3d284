// The demo's conversation, kept in IndexedDB (idb-keyval) as it happens: each user turn when
// sent, the reply after every streamed piece. A tab reload, a crash or a lost device mid-stream
// leaves everything up to the last complete token; the next visit restores it (images
// included: Files are stored as they are). Writes are coalesced: at most one in flight, and
// the newest state is what gets written next.
import { del, get, set } from 'idb-keyval';

export interface StoredTurn {
  role: 'user' | 'assistant';
  text: string;
  /** A user turn's images (File objects survive structured clone into IndexedDB). */
  images?: File[];
  /** An assistant turn that was still streaming when last written. */
  partial?: boolean;
}

export interface StoredChat {
  /** The model label the conversation was held with (restored only with the same model). */
  model: string;
  turns: StoredTurn[];
  updated: number;
}

const KEY = 'pop-llm:demo:chat';

export class ChatStore {
  private next: StoredChat | null = null;
  private writing: Promise<void> | null = null;

  /** Stores `chat` (soon: the latest of several quick calls wins). */
  save(chat: Omit<StoredChat, 'updated'>): Promise<void> {
    this.next = { ...chat, turns: chat.turns.map((t) => ({ ...t })), updated: Date.now() };
    this.writing ??= this.drain();
    return this.writing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.next) {
        const c = this.next;
        this.next = null;
        await set(KEY, c).catch(() => undefined); // storage refused: the chat still works, unsaved
      }
    } finally {
      this.writing = null;
    }
  }

  /** Resolves once everything saved so far is written. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  async load(): Promise<StoredChat | null> {
    const c = (await get(KEY).catch(() => undefined)) as StoredChat | undefined;
    return c && Array.isArray(c.turns) ? c : null;
  }

  async clear(): Promise<void> {
    this.next = null;
    await this.flush();
    await del(KEY).catch(() => undefined);
  }
}
