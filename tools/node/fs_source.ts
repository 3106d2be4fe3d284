// Node only: a ModelSource over a local folder (tests, CLI fixtures). Weight files are read
// in chunks of CHUNK_BYTES.
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelFileMissingError } from '../../src/errors.ts';
import { CHUNK_BYTES, type ModelSource } from '../../src/model/source.ts';

export function folderSource(dir: string): ModelSource {
  const size = async (name: string, optional?: boolean): Promise<number | null> => {
    try {
      return (await stat(join(dir, name))).size;
    } catch {
      if (optional) return null;
      throw new ModelFileMissingError(name);
    }
  };
  return {
    id: dir,
    async fetchFile(name, o = {}) {
      if ((await size(name, o.optional)) === null) return null;
      const b = await readFile(join(dir, name));
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    },
    async openFile(name, o = {}) {
      const bytes = await size(name, o.optional);
      if (bytes === null) return null;
      const fh = await open(join(dir, name), 'r');
      let closed = false;
      const close = async () => {
        if (!closed) (closed = true), await fh.close();
      };
      return {
        size: bytes,
        async read() {
          o.signal?.throwIfAborted();
          const buf = new Uint8Array(CHUNK_BYTES);
          const { bytesRead } = await fh.read(buf, 0, CHUNK_BYTES, null);
          if (bytesRead === 0) {
            await close();
            return null;
          }
          return buf.subarray(0, bytesRead);
        },
        finish: close,
        cancel: close,
      };
    },
  };
}
