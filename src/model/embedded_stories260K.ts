/// <reference path="./embedded_module.d.ts" />
// The bytes of the embedded model (public/models/stories260K), bundled as base64 strings so
// that a package user gets it with no files to copy or serve. The module is made by the
// Vite plugin in vite.config.ts from the files on disk; it is reached only through a dynamic
// import (src/model/embedded.ts), so it is a chunk of its own, fetched when first loaded.
export { files } from 'virtual:pop-llm/stories260K';
