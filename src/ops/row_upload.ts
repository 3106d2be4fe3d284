// Row-range uploads (Ops.uploadRows) that gather the rows on the host and upload the whole
// tensor at finish: the CPU twin's way (its tensors live on the host anyway), and GpuOps'
// fallback for the rare layout whose rows cannot be written in place.
import type { Ops, RowUpload, UploadOptions } from './ops.ts';
import { InternalError } from '../errors.ts';

export class HostRowUpload<T> implements RowUpload<T> {
  private data: Float32Array | null;
  private written = 0;

  constructor(private readonly ops: Ops<T>, private readonly label: string, private readonly rows: number, private readonly opts: UploadOptions & { cols: number }) {
    this.data = new Float32Array(rows * opts.cols);
  }

  write(row0: number, data: Float32Array): void {
    const cols = this.opts.cols;
    checkRows(this.label, this.rows, cols, row0, data.length);
    this.data!.set(data, row0 * cols);
    this.written += data.length / cols;
  }

  finish(): T {
    if (this.written !== this.rows) throw new InternalError(`uploadRows ${this.label}: ${this.written} of ${this.rows} rows written`);
    const t = this.ops.upload(this.label, this.data!, this.opts);
    this.data = null;
    return t;
  }

  discard(): void {
    this.data = null;
  }
}

/** Throws on a write that is not whole rows inside the tensor (a loader bug, not bad input). */
export function checkRows(label: string, rows: number, cols: number, row0: number, elements: number): void {
  if (elements % cols || row0 < 0 || row0 + elements / cols > rows) throw new InternalError(`uploadRows ${label}: ${elements} values at row ${row0} are not whole rows inside [${rows}, ${cols}]`);
}
