// Entry point of the `package` meson suite for the npm package (clients/js):
//   1. `npm pack` (in a copy of the tree, so the source is never touched): the tarball holds exactly
//      the allowlisted files, its version is the project's, and its parley.js is byte for byte the
//      web-client/parley.js the chat page imports;
//   2. the tarball is installed with `npm install` into a scratch project (no registry involved);
//   3. client.mjs, run from that project, drives a real parleyd through the installed package, once
//      with the `ws` package and once with the global WebSocket;
//   4. `tsc --noEmit` type-checks example.ts against the installed declarations (including lines
//      that must NOT compile), and every public method, option and export of parley.js is declared.
// Needs Node >= 20 and `npm ci` in this directory (done here when node_modules is missing or stale).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = process.env.PARLEY_SOURCE_ROOT || path.resolve(here, '..', '..');
const version = process.env.PARLEY_VERSION;
const scratch = process.env.PARLEY_PACKAGE_SCRATCH || path.join(here, 'scratch');
if (!process.env.PARLEYD) { console.error('run.mjs: set PARLEYD to the parleyd binary'); process.exit(2); }

let passed = 0, failed = 0;
function ok(cond, what, detail) {
  if (cond) passed++; else failed++;
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}${!cond && detail !== undefined ? '\n     ' + String(detail).trim().split('\n').join('\n     ') : ''}`);
  return cond;
}
function run(cmd, args, cwd, extra = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', ...extra });
  if (r.error) return { status: 127, out: String(r.error) };
  return { status: r.status, stdout: r.stdout || '', out: (r.stdout || '') + (r.stderr || '') };
}
function finish() {
  console.log(`package (npm): ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

// 0. the pinned test dependencies (ws, typescript), from tests/package/package-lock.json
const stamp = path.join(here, 'node_modules', '.package-lock.json');
if (!fs.existsSync(stamp) || fs.statSync(path.join(here, 'package-lock.json')).mtimeMs > fs.statSync(stamp).mtimeMs) {
  const r = run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], here);
  if (!ok(r.status === 0, 'npm ci in tests/package (ws, typescript as pinned)', r.out)) finish();
}

// 1. npm pack in a copy of clients/js next to a copy of web-client/parley.js (the prepack script
//    copies ../../web-client/parley.js, as it does in the repository)
fs.rmSync(scratch, { recursive: true, force: true });
const tree = path.join(scratch, 'tree');
fs.mkdirSync(path.join(tree, 'web-client'), { recursive: true });
fs.cpSync(path.join(root, 'clients', 'js'), path.join(tree, 'clients', 'js'), {
  recursive: true, filter: (src) => !/(node_modules|\.tgz$|[/\\]parley\.js$)/.test(src),
});
fs.copyFileSync(path.join(root, 'web-client', 'parley.js'), path.join(tree, 'web-client', 'parley.js'));
const pkgDir = path.join(tree, 'clients', 'js');
const project = path.join(scratch, 'project');
fs.mkdirSync(project, { recursive: true });
const pack = run('npm', ['pack', '--json', '--pack-destination', project], pkgDir);
let info = null;
try { info = JSON.parse(pack.stdout); } catch (_) { /* reported below */ }
if (!ok(pack.status === 0 && info, 'npm pack', pack.out)) finish();
const files = info[0].files.map((f) => f.path).sort();
ok(JSON.stringify(files) === JSON.stringify(['README.md', 'package.json', 'parley.d.ts', 'parley.js']),
  'tarball holds exactly README.md, package.json, parley.d.ts, parley.js', files.join(' '));
ok(!version || info[0].version === version, `package version is the project version (${version})`, info[0].version);
ok(/^0\.\d+\.\d+$/.test(info[0].version), 'semver 0.x', info[0].version);
ok(!fs.existsSync(path.join(pkgDir, 'parley.js')), 'postpack removed the copied parley.js');
const tarball = path.join(project, info[0].filename);

// 2. a scratch project that depends on the tarball
fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({
  name: 'scratch-consumer', version: '1.0.0', private: true, type: 'module',
  dependencies: { 'parley-client': 'file:./' + info[0].filename },
}, null, 2));
const inst = run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], project);
ok(inst.status === 0, 'npm install of the tarball into a scratch project (offline)', inst.out);
const installed = path.join(project, 'node_modules', 'parley-client');
ok(fs.existsSync(installed) && !fs.lstatSync(installed).isSymbolicLink(), 'installed as a copy, not a link');
const same = fs.existsSync(path.join(installed, 'parley.js')) &&
  fs.readFileSync(path.join(installed, 'parley.js')).equals(fs.readFileSync(path.join(root, 'web-client', 'parley.js')));
ok(same, 'installed parley.js is byte for byte web-client/parley.js');
// The scratch project's WebSocket for Node 20: the pinned `ws`.
fs.symlinkSync(path.join(here, 'node_modules', 'ws'), path.join(project, 'node_modules', 'ws'), 'dir');
for (const f of ['client.mjs', 'example.ts', 'tsconfig.json']) fs.copyFileSync(path.join(here, f), path.join(project, f));
const resolved = run(process.execPath, ['--input-type=module', '-e',
  "console.log(import.meta.resolve('parley-client'))"], project);
ok(resolved.out.trim() === pathToFileURL(path.join(installed, 'parley.js')).href,
  "import 'parley-client' resolves to the installed parley.js (exports)", resolved.out);

// 3. against a real parleyd
for (const mode of ['ws', 'global']) {
  const flags = mode === 'global' && typeof WebSocket === 'undefined' ? ['--experimental-websocket'] : [];
  const r = run(process.execPath, [...flags, '--no-warnings', 'client.mjs', mode], project,
    { env: process.env, timeout: 120000 });
  process.stdout.write(r.out.split('\n').map((l) => l && '     ' + l).join('\n'));
  ok(r.status === 0, `client.mjs ${mode}: the installed package against parleyd`);
}

// 4. the declarations
const tsc = run(process.execPath, [path.join(here, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', 'tsconfig.json'], project);
ok(tsc.status === 0, 'tsc --noEmit: example.ts type-checks against parley.d.ts (and the @ts-expect-error lines fail)', tsc.out);
const dts = fs.readFileSync(path.join(installed, 'parley.d.ts'), 'utf8');
const mod = await import(pathToFileURL(path.join(installed, 'parley.js')).href);
const cls = dts.slice(dts.indexOf('export class Parley {'));
const methods = Object.getOwnPropertyNames(mod.Parley.prototype).filter((m) => m !== 'constructor' && !m.startsWith('_'));
const undeclared = methods.filter((m) => !new RegExp(`\\n  ${m}(<[^>]*>)?\\(`).test(cls));
ok(undeclared.length === 0, `every public method of Parley is declared (${methods.length})`, undeclared.join(' '));
const optsBlock = dts.slice(dts.indexOf('export interface ParleyOptions {'));
const opts = Object.keys(mod.DEFAULTS);
const undeclaredOpts = opts.filter((o) => !new RegExp(`\\n  ${o}\\?:`).test(optsBlock.slice(0, optsBlock.indexOf('\n}'))));
ok(undeclaredOpts.length === 0, `every option in DEFAULTS is declared in ParleyOptions (${opts.length})`, undeclaredOpts.join(' '));
const exportsMissing = Object.keys(mod).filter((k) => k === 'default'
  ? !/\nexport default /.test(dts) : !new RegExp(`\\nexport (declare )?(class|const|function) ${k}\\b`).test(dts));
ok(exportsMissing.length === 0, `every export of parley.js is declared (${Object.keys(mod).join(', ')})`, exportsMissing.join(' '));
finish();
