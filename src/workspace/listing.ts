/** The index's mode of a gitlink: a repository nested in the working tree, added by its commit. */
export const GITLINK_MODE = '160000';

/**
 * `git diff-tree --raw -z` read as it comes (`:<mode> <mode> <id> <id> <status>`, NUL, the path,
 * NUL), keeping paths up to a number of bytes and counting the rest: a run can touch any number
 * of files, with paths as long as it likes, and the listing is never held whole.
 */
export class ChangeListing {
  readonly changed: string[] = [];
  readonly added: string[] = [];
  readonly deleted: string[] = [];
  /** Every repository nested in the checkout that the change holds (see leaveAsAdded). */
  readonly nested: string[] = [];
  /** Paths of the change left out of the three lists once they held their bytes. */
  unlisted = 0;
  private pending: Buffer[] = [];
  private header: string | null = null;
  private left: number;

  constructor(maxPathBytes: number) {
    this.left = maxPathBytes;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (let end = chunk.indexOf(0); end !== -1; end = chunk.indexOf(0, start)) {
      this.field(Buffer.concat([...this.pending, chunk.subarray(start, end)]));
      this.pending = [];
      start = end + 1;
    }
    if (start < chunk.length) this.pending.push(chunk.subarray(start));
  }

  private field(bytes: Buffer): void {
    if (this.header === null) {
      this.header = bytes.toString('utf8');
      return;
    }
    const [, mode = '', , , status = ''] = this.header.split(' ');
    this.header = null;
    const path = bytes.toString('utf8');
    if (mode === GITLINK_MODE) this.nested.push(path);
    // Once one path does not fit, none after it is listed: each list stays a prefix.
    if (this.unlisted > 0 || bytes.length > this.left) {
      this.unlisted++;
      return;
    }
    this.left -= bytes.length;
    if (status === 'A') this.added.push(path);
    else if (status === 'D') this.deleted.push(path);
    else this.changed.push(path);
  }
}
