// Ordered shutdown of the parts a process started: each part registers how to stop itself as it starts, and
// close() stops them in reverse order (the API before the queue it talks to, the queue before Redis).
export class Lifecycle {
  private readonly closers: Array<{ name: string; close: () => Promise<unknown> | unknown }> = [];
  private closing: Promise<void> | undefined;

  add(name: string, close: () => Promise<unknown> | unknown): void {
    this.closers.push({ name, close });
  }

  /** Stops every part, last started first; errors are reported to `onError` and do not stop the others. */
  close(onError: (name: string, err: unknown) => void = () => undefined): Promise<void> {
    this.closing ??= (async () => {
      for (const { name, close } of this.closers.reverse()) {
        try {
          await close();
        } catch (err) {
          onError(name, err);
        }
      }
    })();
    return this.closing;
  }
}
