// Shows a growing text (a streamed answer) in Discord messages: the first message is edited as the text grows,
// through an edit coalescer; when the text outgrows it the message is frozen at a clean cut and the text goes on
// in the next one; past `maxParts` messages the last one stops growing and, at the end, the full text is
// attached as a file. While streaming the live message ends in a cursor, so readers see it is not finished.
import { EditCoalescer } from './coalescer.js';
import { DEFAULT_PART_LIMIT, splitMessage } from './split.js';

/** Where the parts go: message 0 already exists (a deferred reply, a placeholder); later ones are created. */
export interface MessageSink {
  edit(index: number, content: string): Promise<void>;
  create(content: string): Promise<void>;
  /** posts the full text as a file, with a short note */
  attach(note: string, file: { name: string; data: Buffer }): Promise<void>;
}

export interface StreamedTextOptions {
  minIntervalMs: number;
  partLimit?: number;
  maxParts?: number;
  /** name of the attached file when the text outgrows `maxParts` */
  fileName?: string;
}

const CURSOR = ' ▌';
const MORE = '\n… *(the rest is in the attached file)*';

export class StreamedText {
  readonly #sink: MessageSink;
  readonly #options: Required<StreamedTextOptions>;
  #text = '';
  #index = 0;
  #live: EditCoalescer<string>;
  #pump: Promise<void> = Promise.resolve();
  #pumping = false;
  #finished = false;
  #done = false;
  #seen = '';
  #error: unknown = null;

  constructor(sink: MessageSink, options: StreamedTextOptions) {
    this.#sink = sink;
    this.#options = { partLimit: DEFAULT_PART_LIMIT, maxParts: 3, fileName: 'answer.md', ...options };
    this.#live = this.#coalescer(0);
  }

  #coalescer(index: number): EditCoalescer<string> {
    return new EditCoalescer((content) => this.#sink.edit(index, content), { minIntervalMs: this.#options.minIntervalMs });
  }

  /** The text so far (the whole of it, not a delta). */
  set(text: string): void {
    if (this.#finished || this.#error !== null) return;
    this.#text = text;
    this.#kick();
  }

  /** Shows the final text and resolves once every message shows its final state. */
  async finish(text: string): Promise<void> {
    this.#text = text;
    this.#finished = true;
    while (!this.#done && this.#error === null) {
      this.#kick();
      await this.#pump;
    }
    if (this.#error !== null) throw this.#error;
  }

  #kick(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    this.#pump = this.#run()
      .catch((err: unknown) => {
        this.#error = err;
      })
      .finally(() => {
        this.#pumping = false;
        // text that arrived while the last pass was ending has not been shown yet
        if (this.#seen !== this.#text && this.#error === null && !this.#done) this.#kick();
      });
  }

  async #run(): Promise<void> {
    // loop until the messages show the latest text; `set` may change #text during every await
    while (true) {
      this.#seen = this.#text;
      const parts = splitMessage(this.#text, this.#options.partLimit);
      const last = this.#options.maxParts - 1;
      if (this.#index < parts.length - 1 && this.#index < last) {
        await this.#live.finish(parts[this.#index]!);
        this.#index += 1;
        await this.#sink.create(parts[this.#index]! + (this.#finished && this.#index === parts.length - 1 ? '' : CURSOR));
        this.#live = this.#coalescer(this.#index);
        continue;
      }
      const overflow = parts.length > this.#options.maxParts;
      const shown = parts[this.#index]! + (overflow ? MORE : '');
      if (!this.#finished) {
        this.#live.update(shown + (overflow ? '' : CURSOR));
        return;
      }
      await this.#live.finish(shown);
      if (overflow) {
        const note = `Full answer: ${this.#text.length} characters.`;
        await this.#sink.attach(note, { name: this.#options.fileName, data: Buffer.from(this.#text, 'utf8') });
      }
      this.#done = true;
      return;
    }
  }
}
