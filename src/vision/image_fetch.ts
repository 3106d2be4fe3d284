// Image URLs (http(s), data:, blob:) to bytes. A network failure or an HTTP error is
// IMAGE_FETCH_FAILED with the status, never "could not be decoded": a 404 page is not an
// image that failed to decode. Used by the page (client) and the worker alike.
import { ImageFetchError } from '../errors.ts';

export async function fetchImage(url: string, index: number, signal?: AbortSignal): Promise<Blob> {
  const shown = url.length > 96 ? `${url.slice(0, 96)}...` : url;
  let res: Response;
  try {
    res = await fetch(url, { signal });
  } catch (e) {
    if ((e as Error)?.name === 'AbortError') throw e;
    throw new ImageFetchError(index, shown, null, `network error (${(e as Error)?.message ?? String(e)})`);
  }
  if (!res.ok) throw new ImageFetchError(index, shown, res.status, res.statusText || 'the server refused it');
  try {
    return await res.blob();
  } catch (e) {
    throw new ImageFetchError(index, shown, res.status, `the connection dropped while reading it (${(e as Error)?.message ?? String(e)})`);
  }
}
