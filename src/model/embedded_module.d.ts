// The module that vite.config.ts makes from public/models/stories260K: file name -> base64
// (null in the package's Blob-URL worker, whose page sends the files).
declare module 'virtual:pop-llm/stories260K' {
  export const files: Record<string, string> | null;
}
