// The file a recorder writes (traffic log, pcap): a buffered stream whose write errors are
// kept for close() instead of thrown, so a full disk never takes the proxy down.
import fs from 'node:fs';

export class RecordFile {
  private readonly stream: fs.WriteStream;
  private failure: Error | null = null;
  private ending: Promise<void> | null = null;

  constructor(readonly path: string) {
    this.stream = fs.createWriteStream(path);
    this.stream.on('error', (err) => {
      this.failure ??= err;
    });
  }

  /** Writing failed or the file is ending: nothing more will be written. */
  get unwritable(): boolean {
    return this.failure !== null || this.ending !== null;
  }

  /** Bytes handed to the stream and not yet on disk. */
  get buffered(): number {
    return this.stream.writableLength;
  }

  write(data: string | Buffer): void {
    if (!this.unwritable) this.stream.write(data);
  }

  /** Flush and close; rejects with the first write error, if any. */
  end(): Promise<void> {
    this.ending ??= new Promise<void>((resolve, reject) => {
      const settle = () => (this.failure ? reject(this.failure) : resolve());
      // A stream that failed has already closed itself; otherwise 'close' follows 'finish'.
      if (this.stream.closed) return settle();
      this.stream.once('close', settle);
      this.stream.end();
    });
    return this.ending;
  }
}
