// Typed errors across the worker boundary: Comlink's default 'throw' handler keeps only
// name, message and stack, so PopErrors travel as {code, fields} and are rebuilt with their
// class on the other side. Registered by both the worker and the client.
import * as Comlink from 'comlink';
import { fromSerialized, PopError, type PopErrorCode, type ErrorFields } from '../errors.ts';

interface SerializedPopError { isPopError: true; name: string; code: PopErrorCode; message: string; fields: ErrorFields; stack?: string }

let registered = false;
export function registerErrorTransfer(): void {
  if (registered) return;
  registered = true;
  const base = Comlink.transferHandlers.get('throw')!;
  Comlink.transferHandlers.set('throw', {
    canHandle: base.canHandle,
    serialize(thrown: any) {
      const v = thrown?.value;
      if (v instanceof PopError) {
        const s: SerializedPopError = { isPopError: true, name: v.name, code: v.code, message: v.message, fields: { ...v.fields }, stack: v.stack };
        return [s, []];
      }
      return base.serialize(thrown);
    },
    deserialize(s: any) {
      if (s && s.isPopError) {
        const e = fromSerialized(s);
        if (s.stack) e.stack = s.stack;
        throw e;
      }
      return base.deserialize(s);
    },
  } as Comlink.TransferHandler<unknown, unknown>);
}
