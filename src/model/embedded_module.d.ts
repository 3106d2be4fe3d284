// The module that vite.config.ts makes from public/models/stories260K: file name -> base64.
declare module 'virtual:pop-llm/stories260K' {
  export const files: Record<string, string>;
}
