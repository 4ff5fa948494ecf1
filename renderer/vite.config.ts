// The renderer's build: Svelte 5, into dist/renderer with relative URLs so
// the same files load from app://vmchan/ (Electron) and from `vmchan serve`.
// No inline scripts or styles (the CSP allows neither).
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig, type Plugin } from 'vite';

/**
 * The chardev kind records (core/chardev/kinds/) parse and print in the page
 * too, and load their backend only when a chardev opens, with import(). The
 * page never opens one, so those imports resolve to an empty module here
 * instead of bundling Node-only code the browser cannot run.
 */
function noChardevBackends(): Plugin {
  const stub = '\0vmchan:no-chardev-backend';
  return {
    name: 'vmchan-no-chardev-backends',
    enforce: 'pre',
    resolveId(source, importer) {
      if (importer?.includes('/core/chardev/kinds/') && /-backend\.js$/.test(source)) return stub;
      return null;
    },
    load(id) {
      return id === stub ? 'export {};' : null;
    },
  };
}

const here = new URL('.', import.meta.url).pathname;

export default defineConfig({
  root: here,
  base: './',
  plugins: [noChardevBackends(), svelte()],
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
