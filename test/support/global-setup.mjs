// Jest loads global setup outside its transform pipeline; tsx loads the TypeScript for it.
import { tsImport } from 'tsx/esm/api';

export default async function () {
  const { globalSetup } = await tsImport('./emulators-setup.ts', import.meta.url);
  await globalSetup();
}
