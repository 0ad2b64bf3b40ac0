import { defineConfig } from 'vitest/config';

// The app is served by the gateway at / (package web embeds dist/). No plugin:
// esbuild compiles the Preact JSX itself.
export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0, // no data: URLs: the CSP allows files of the origin only
    sourcemap: false,
    target: 'es2020',
  },
  server: {
    // `npm run dev` against a running gateway: VOLTAGE_GATEWAY=http://127.0.0.1:6005
    proxy: process.env.VOLTAGE_GATEWAY
      ? { '^/(?!src|@|node_modules|assets).*': { target: process.env.VOLTAGE_GATEWAY, ws: true } }
      : undefined,
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
