// Node only: a ModelSource over a local folder (tests, CLI fixtures).
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelFileMissingError } from '../errors.ts';
import type { ModelSource } from '../model/source.ts';

export function folderSource(dir: string): ModelSource {
  return {
    id: dir,
    async fetchFile(name, o = {}) {
      const p = join(dir, name);
      try {
        await stat(p);
      } catch {
        if (o.optional) return null;
        throw new ModelFileMissingError(name);
      }
      const b = await readFile(p);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    },
  };
}
