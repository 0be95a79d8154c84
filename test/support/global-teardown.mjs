export default async function () {
  await Promise.all((globalThis.__OC_EMULATORS__ ?? []).map((e) => e.stop()));
}
