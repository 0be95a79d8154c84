/**
 * Where a bundle's module init goes: reads the `--cpu-prof` profiles that `bench/cold-start.ts`
 * writes with `OC_BENCH_CPU_PROF=<dir>`, maps each sample of the bundle back to its source through
 * the bundle's source map (the bundles are minified), and prints the self time by package or
 * source folder and by function, averaged over the profiles (one per fresh process).
 *
 *   OC_BENCH_CPU_PROF=/tmp/prof/mcp npx tsx bench/cold-start.ts --runs 5 --only mcp
 *   npx tsx bench/init-profile.ts /tmp/prof/mcp [--cdk-out cdk.out] [--top 25]
 *
 * Samples outside the bundle keep their own names: `(program)` is mostly V8 parsing and compiling,
 * `(garbage collector)` is GC, `node:` URLs are Node's own module loader.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** A source map (v3) read enough to map a generated position back: sources, names and mappings. */
interface RawSourceMap {
  sources: string[];
  names: string[];
  mappings: string;
}
type Original = { source: string | null; line: number | null; name: string | null };

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * The mappings decoded once (base64 VLQ, as the v3 format specifies): for each generated line, its
 * segments [column, source, line, column, name?] sorted by column. No dependency for a dev tool.
 */
class SourceMapConsumer {
  private readonly lines: number[][][] = [];
  constructor(private readonly map: RawSourceMap) {
    let source = 0;
    let line = 0;
    let column = 0;
    let name = 0;
    for (const text of map.mappings.split(';')) {
      const segments: number[][] = [];
      let generated = 0;
      for (const segment of text.split(',')) {
        if (!segment) continue;
        const values: number[] = [];
        let value = 0;
        let shift = 0;
        for (const char of segment) {
          const digit = BASE64.indexOf(char);
          value += (digit & 31) << shift;
          if (digit & 32) shift += 5;
          else {
            values.push(value & 1 ? -(value >>> 1) : value >>> 1);
            value = 0;
            shift = 0;
          }
        }
        generated += values[0] ?? 0;
        if (values.length >= 4) {
          source += values[1]!;
          line += values[2]!;
          column += values[3]!;
          if (values.length >= 5) name += values[4]!;
          segments.push(
            values.length >= 5 ? [generated, source, line, column, name] : [generated, source, line, column],
          );
        }
      }
      this.lines.push(segments);
    }
  }

  /** `line` 1-based, `column` 0-based (a V8 call frame's line plus one, and its column). */
  originalPositionFor({ line, column }: { line: number; column: number }): Original {
    const segments = this.lines[line - 1] ?? [];
    let found: number[] | undefined;
    for (const segment of segments) {
      if (segment[0]! > column) break;
      found = segment;
    }
    if (!found) return { source: null, line: null, name: null };
    return {
      source: this.map.sources[found[1]!] ?? null,
      line: found[2]! + 1,
      name: found.length >= 5 ? (this.map.names[found[4]!] ?? null) : null,
    };
  }
}

interface ProfileNode {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface InitProfile {
  profiles: number;
  /** Mean self time per profile, ms, by package (`@aws-sdk/client-dynamodb`) or source folder. */
  byModule: [string, number][];
  /** Mean self time per profile, ms, by `function (source)`. */
  byFunction: [string, number][];
  /** Mean time per profile, ms, spent in a function and everything it called (recursion counted once). */
  inclusive: [string, number][];
  totalMs: number;
}

/** The package or the repository folder a source path belongs to. */
function moduleOf(source: string): string {
  const nm = source.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = source.slice(nm + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const repo = /(functions|bin|lib)\/.*$/.exec(source);
  return repo ? path.dirname(repo[0]) : source;
}

export function analyzeInitProfiles(dir: string): InitProfile {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const consumers = new Map<string, SourceMapConsumer | null>();
  const consumerFor = (url: string): SourceMapConsumer | null => {
    if (!consumers.has(url)) {
      let consumer: SourceMapConsumer | null = null;
      if (url.startsWith('file://')) {
        try {
          const map = JSON.parse(readFileSync(`${fileURLToPath(url)}.map`, 'utf8')) as RawSourceMap;
          consumer = new SourceMapConsumer(map);
        } catch {
          consumer = null;
        }
      }
      consumers.set(url, consumer);
    }
    return consumers.get(url)!;
  };
  const byModule = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let totalMs = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile;
    const self = new Map<number, number>();
    profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
    const names = new Map<number, string>();
    for (const node of profile.nodes) {
      const { functionName, url, lineNumber, columnNumber } = node.callFrame;
      let module = url ? (url.startsWith('node:') ? 'node (loader, builtins)' : url) : functionName;
      let fn = functionName || '(anonymous)';
      const consumer = url ? consumerFor(url) : null;
      if (consumer) {
        const original = consumer.originalPositionFor({ line: lineNumber + 1, column: columnNumber });
        module = original.source ? moduleOf(original.source) : 'bundle (unmapped)';
        fn = `${original.name ?? fn} (${original.source ? `${moduleOf(original.source)}:${original.line}` : '?'})`;
      } else if (url) {
        fn = `${fn} (${url.replace(/^.*\//, '')}:${lineNumber + 1})`;
      }
      names.set(node.id, fn);
      const us = self.get(node.id);
      if (!us) continue;
      const ms = us / 1000;
      totalMs += ms;
      byModule.set(module, (byModule.get(module) ?? 0) + ms);
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
    }
    // Inclusive time: walk the call tree from the root, each sample's time to every distinct
    // function on its stack.
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const walk = (id: number, stack: Set<string>): number => {
      const node = byId.get(id)!;
      const name = names.get(id)!;
      const fresh = !stack.has(name);
      if (fresh) stack.add(name);
      let us = self.get(id) ?? 0;
      for (const child of node.children ?? []) us += walk(child, stack);
      if (fresh) {
        stack.delete(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + us / 1000);
      }
      return us;
    };
    walk(profile.nodes[0]!.id, new Set());
  }
  const n = Math.max(1, files.length);
  const mean = (m: Map<string, number>): [string, number][] =>
    [...m].map(([k, v]) => [k, v / n] as [string, number]).sort((a, b) => b[1] - a[1]);
  return {
    profiles: files.length,
    byModule: mean(byModule),
    byFunction: mean(byFunction),
    inclusive: mean(inclusive),
    totalMs: totalMs / n,
  };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' } },
  });
  const top = Number(values.top);
  for (const dir of positionals) {
    const p = analyzeInitProfiles(dir);
    const line = ([k, v]: [string, number]) => `| ${k.replace(/\|/g, '/')} | ${v.toFixed(1)} |`;
    console.log(
      [
        `${dir}: ${p.profiles} profiles, ${p.totalMs.toFixed(1)} ms sampled per process (self time, mean)`,
        '',
        '| package or folder | ms |',
        '| --- | ---: |',
        ...p.byModule.slice(0, top).map(line),
        '',
        '| function | ms |',
        '| --- | ---: |',
        ...p.byFunction.slice(0, top).map(line),
        '',
        '| function, with what it calls | ms |',
        '| --- | ---: |',
        ...p.inclusive.slice(0, top).map(line),
        '',
      ].join('\n'),
    );
  }
}
