// The renderer's build: Svelte 5, into dist/renderer with relative URLs so
// the same files load from app://vmchan/ (Electron) and from `vmchan serve`.
// No inline scripts or styles (the CSP allows neither).
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

const here = new URL('.', import.meta.url).pathname;

export default defineConfig({
  root: here,
  base: './',
  plugins: [svelte()],
  build: {
    outDir: `${here}../dist/renderer`,
    emptyOutDir: true,
    target: 'es2022',
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  server: { fs: { allow: [`${here}..`] } },
});
