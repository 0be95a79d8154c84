import { rmSync } from 'node:fs';

export default async function () {
  await Promise.all((globalThis.__OC_EMULATORS__ ?? []).map((e) => e.stop()));
  for (const dir of globalThis.__OC_TEMP_DIRS__ ?? []) rmSync(dir, { recursive: true, force: true });
}
