import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve as resolvePath } from 'node:path';
import { missingToolMessage, terraformTool } from './tools.js';

/**
 * The top-level blocks of one type (`locals`, `variable`, …) of a `terraform fmt`-formatted file, as
 * text: from the line that opens the block at column 0 to the next line that is only `}`. Formatted
 * HCL indents everything inside a block, so that line closes it. A file that is not formatted the same
 * way yields text `terraform console` refuses, so a mistake here fails loudly rather than silently.
 */
export function hclTopLevelBlocks(hcl: string, type: string): string[] {
  const blocks: string[] = [];
  let current: string[] | undefined;
  for (const line of hcl.split('\n')) {
    if (!current) {
      if (new RegExp(`^${type}\\s*\\{\\s*$`).test(line)) current = [line];
      continue;
    }
    current.push(line);
    if (/^\}\s*$/.test(line)) {
      blocks.push(current.join('\n'));
      current = undefined;
    }
  }
  return blocks;
}

/** The line of the one-line attribute `name = …` in `hcl`; throws when there is not exactly one. */
export function hclAttributeLine(hcl: string, name: string): string {
  const lines = hcl.split('\n').filter((line) => new RegExp(`^\\s*${name}\\s*=`).test(line));
  if (lines.length !== 1) throw new Error(`expected one attribute "${name}", found ${lines.length}`);
  return lines[0]!;
}

/**
 * Evaluates one expression with the real `terraform console` in `dir` and returns its value: the
 * expression is wrapped in `jsonencode(…)`, so it must be JSON-encodable. `dir` must hold a module
 * without providers or resources (locals, variables, outputs): console then needs no `terraform init`,
 * no state and no network. Fails with the command that installs Terraform when it is not on PATH.
 */
export async function terraformEvaluate(dir: string, expression: string): Promise<unknown> {
  // An empty CLI configuration: no warning about a missing ~/.terraformrc, no plugin or credential
  // settings of the machine, and no version check over the network.
  const cliConfig = join(dir, '.terraformrc');
  await writeFile(cliConfig, '');
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    TF_CLI_CONFIG_FILE: cliConfig,
    CHECKPOINT_DISABLE: '1',
    TF_IN_AUTOMATION: '1',
  };
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolvePromise, reject) => {
      const child = spawn('terraform', ['console', '-no-color'], { cwd: dir, env });
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      child.stderr.on('data', (chunk: Buffer) => {
        err += chunk.toString();
      });
      child.on('error', (error: NodeJS.ErrnoException) => {
        reject(error.code === 'ENOENT' ? new Error(missingToolMessage(terraformTool())) : error);
      });
      child.on('close', (exitCode) => resolvePromise({ code: exitCode, stdout: out, stderr: err }));
      // One expression: console prints only the result of the last line it reads from a pipe.
      child.stdin.end(`jsonencode(${expression})\n`);
    },
  );
  if (code !== 0) throw new Error(`terraform console failed (exit ${code}) in ${dir}:\n${stderr || stdout}`);
  // Console prints the JSON text as a Go-quoted string, which is valid JSON for such a text (jsonencode
  // has already escaped every control character): decode the string, then the JSON inside it.
  return JSON.parse(JSON.parse(stdout.trim()) as string);
}

// --- Reading a module with an HCL parser, and evaluating what the checks need ----------------------

/** The part of @cdktf/hcl2json used here. Typed locally: its own .d.ts pulls the DOM library into the program. */
interface Hcl2Json {
  parse(filename: string, contents: string): Promise<Record<string, unknown>>;
}

let hcl2json: Hcl2Json | undefined;

/**
 * One HCL file as @cdktf/hcl2json reads it: blocks become arrays of bodies, attributes keep literal
 * values as JSON and every expression as its source text wrapped in `${…}`. The parser is the HCL
 * library Terraform uses, compiled to WebAssembly: no network, no Terraform, no providers.
 */
export async function parseHcl(filename: string, contents: string): Promise<Record<string, unknown>> {
  // Loaded on first use: the module starts its WebAssembly runtime when it is required.
  hcl2json ??= createRequire(import.meta.url)('@cdktf/hcl2json') as Hcl2Json;
  return hcl2json.parse(filename, contents);
}

export type HclBody = Record<string, unknown>;

/** A `resource` or `data` block, with the file it is written in. */
export interface TerraformBlock {
  kind: 'resource' | 'data';
  type: string;
  name: string;
  file: string;
  body: HclBody;
  /** `type.name`, or `data.type.name`. */
  address: string;
}

/** Every `.tf` file of a module, parsed: its blocks, locals and variables, each with its file. */
export interface TerraformModule {
  /** Absolute: `path.module`. */
  dir: string;
  files: string[];
  blocks: TerraformBlock[];
  locals: Map<string, { file: string; value: unknown }>;
  variables: Map<string, { file: string; body: HclBody }>;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads every `.tf` file of `dir` (not subdirectories) with the HCL parser. */
export async function readTerraformModule(dir: string): Promise<TerraformModule> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.tf')).sort();
  const module: TerraformModule = {
    dir: resolvePath(dir),
    files,
    blocks: [],
    locals: new Map(),
    variables: new Map(),
  };
  for (const file of files) {
    const parsed = await parseHcl(file, await readFile(join(dir, file), 'utf8'));
    for (const kind of ['resource', 'data'] as const) {
      const byType = parsed[kind];
      if (!isRecord(byType)) continue;
      for (const [type, byName] of Object.entries(byType)) {
        for (const [name, bodies] of Object.entries(byName as Record<string, HclBody[]>)) {
          const address = kind === 'data' ? `data.${type}.${name}` : `${type}.${name}`;
          if (module.blocks.some((b) => b.address === address) || bodies.length !== 1) {
            throw new Error(`${file}: ${address} is declared more than once`);
          }
          module.blocks.push({ kind, type, name, file, body: bodies[0]!, address });
        }
      }
    }
    for (const block of (parsed.locals as HclBody[] | undefined) ?? []) {
      for (const [name, value] of Object.entries(block)) {
        const earlier = module.locals.get(name);
        if (earlier) throw new Error(`${file}: local.${name} is also declared in ${earlier.file}`);
        module.locals.set(name, { file, value });
      }
    }
    for (const [name, bodies] of Object.entries(
      (parsed.variable as Record<string, HclBody[]> | undefined) ?? {},
    )) {
      module.variables.set(name, { file, body: bodies[0]! });
    }
  }
  return module;
}

/**
 * A value Terraform knows only after apply (a function's URL, a data source's answer), or one built
 * from such a value. `origin` is the resource instance it comes from and `path` the attribute read on
 * it, so a check can still tell which function's URL an expression names.
 */
export class Unknown {
  constructor(
    readonly what: string,
    readonly origin?: Instance,
    readonly path: readonly (string | number)[] = [],
  ) {}
}

/** One instance of a resource or data block: the block itself, or one key of its for_each or count. */
export class Instance {
  constructor(
    readonly block: TerraformBlock,
    readonly key: string | number | undefined,
    readonly scope: Scope,
  ) {}

  /** `type.name["key"]`, as Terraform names the instance. */
  get address(): string {
    if (this.key === undefined) return this.block.address;
    return `${this.block.address}[${typeof this.key === 'string' ? JSON.stringify(this.key) : this.key}]`;
  }

  /** Where it is written, for messages: `functions.tf google_x.y["k"]`. */
  get where(): string {
    return `${this.block.file} ${this.address}`;
  }
}

type Scope = Record<string, unknown>;

/** The roots a traversal can start from besides scope variables. */
class Root {
  constructor(
    readonly kind: 'var' | 'local' | 'path' | 'data' | 'resourceType' | 'dataType',
    readonly type = '',
  ) {}
}

type Token =
  | { t: 'num'; v: number }
  | { t: 'str'; v: string }
  | { t: 'id'; v: string }
  | { t: 'op'; v: string }
  | { t: 'eof' };

type Step = { attr: string } | { index: Expr };

type Expr =
  | { k: 'lit'; v: unknown }
  | { k: 'tpl'; raw: string }
  | { k: 'name'; name: string }
  | { k: 'attr'; of: Expr; name: string }
  | { k: 'index'; of: Expr; key: Expr }
  | { k: 'splat'; of: Expr; steps: Step[] }
  | { k: 'call'; name: string; args: Expr[]; expand: boolean }
  | { k: 'unary'; op: string; x: Expr }
  | { k: 'bin'; op: string; a: Expr; b: Expr }
  | { k: 'cond'; c: Expr; t: Expr; f: Expr }
  | { k: 'tuple'; items: Expr[] }
  | { k: 'object'; items: Array<[Expr, Expr]> }
  | {
      k: 'for';
      object: boolean;
      keyVar?: string;
      valVar: string;
      of: Expr;
      key?: Expr;
      value: Expr;
      cond?: Expr;
    };

const OPERATORS = ['...', '=>', '==', '!=', '<=', '>=', '&&', '||', ...'[]{}(),.:?=<>+-*/%!'];

/** Index of the `}` that closes an interpolation whose expression starts at `start`. */
function interpolationEnd(text: string, start: number): number {
  let depth = 1;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') i = stringEnd(text, i + 1);
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) return i;
  }
  throw new Error(`unterminated interpolation in: ${text}`);
}

/** Index of the `"` that closes a quoted template whose content starts at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\') i++;
    else if (ch === '$' && text[i + 1] === '{') i = interpolationEnd(text, i + 2);
    else if (ch === '"') return i;
  }
  throw new Error(`unterminated string in: ${text}`);
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    const rest = text.slice(i);
    if (/\s/.test(ch)) {
      i++;
    } else if (ch === '#' || rest.startsWith('//')) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (rest.startsWith('/*')) {
      i = text.indexOf('*/', i + 2) + 2;
      if (i < 2) throw new Error(`unterminated comment in: ${text}`);
    } else if (ch === '"') {
      const end = stringEnd(text, i + 1);
      tokens.push({ t: 'str', v: text.slice(i + 1, end) });
      i = end + 1;
    } else if (/[0-9]/.test(ch)) {
      const m = /^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(rest)!;
      tokens.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(ch)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(rest)!;
      tokens.push({ t: 'id', v: m[0] });
      i += m[0].length;
    } else {
      const op = OPERATORS.find((o) => rest.startsWith(o));
      if (!op) throw new Error(`unexpected "${ch}" in: ${text}`);
      tokens.push({ t: 'op', v: op });
      i += op.length;
    }
  }
  tokens.push({ t: 'eof' });
  return tokens;
}

/** A recursive-descent parser of HCL's expression syntax (newlines are insignificant here). */
class Parser {
  private at = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly text: string,
  ) {}

  static parse(text: string): Expr {
    const parser = new Parser(tokenize(text), text);
    const expr = parser.expression();
    parser.expect('eof');
    return expr;
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.at + offset, this.tokens.length - 1)]!;
  }

  private isOp(v: string, offset = 0): boolean {
    const token = this.peek(offset);
    return token.t === 'op' && token.v === v;
  }

  private take(): Token {
    return this.tokens[this.at++]!;
  }

  private fail(what: string): never {
    throw new Error(`cannot parse ${JSON.stringify(this.text)}: ${what} at token ${this.at}`);
  }

  private expect(t: 'eof' | 'id'): Token;
  private expect(t: 'op', v: string): Token;
  private expect(t: Token['t'], v?: string): Token {
    const token = this.take();
    if (token.t !== t || (v !== undefined && (token as { v?: unknown }).v !== v))
      this.fail(`expected ${v ?? t}`);
    return token;
  }

  expression(): Expr {
    const c = this.binary(0);
    if (!this.isOp('?')) return c;
    this.take();
    const t = this.expression();
    this.expect('op', ':');
    return { k: 'cond', c, t, f: this.expression() };
  }

  private static readonly LEVELS = [
    ['||'],
    ['&&'],
    ['==', '!='],
    ['<', '>', '<=', '>='],
    ['+', '-'],
    ['*', '/', '%'],
  ];

  private binary(level: number): Expr {
    if (level === Parser.LEVELS.length) return this.unary();
    let a = this.binary(level + 1);
    for (;;) {
      const token = this.peek();
      if (token.t !== 'op' || !Parser.LEVELS[level]!.includes(token.v)) return a;
      this.take();
      a = { k: 'bin', op: token.v, a, b: this.binary(level + 1) };
    }
  }

  private unary(): Expr {
    if (this.isOp('!') || this.isOp('-')) {
      const op = (this.take() as { v: string }).v;
      return { k: 'unary', op, x: this.unary() };
    }
    return this.postfix(this.primary());
  }

  private postfix(of: Expr): Expr {
    for (;;) {
      if (this.isOp('.') && this.peek(1).t === 'id') {
        this.take();
        of = { k: 'attr', of, name: (this.take() as { v: string }).v };
      } else if (this.isOp('.') && this.peek(1).t === 'num') {
        this.take();
        of = { k: 'index', of, key: { k: 'lit', v: (this.take() as { v: number }).v } };
      } else if (this.isOp('[') && this.isOp('*', 1) && this.isOp(']', 2)) {
        this.at += 3;
        return { k: 'splat', of, steps: this.splatSteps() };
      } else if (this.isOp('.') && this.isOp('*', 1)) {
        this.at += 2;
        return { k: 'splat', of, steps: this.splatSteps() };
      } else if (this.isOp('[')) {
        this.take();
        const key = this.expression();
        this.expect('op', ']');
        of = { k: 'index', of, key };
      } else {
        return of;
      }
    }
  }

  private splatSteps(): Step[] {
    const steps: Step[] = [];
    for (;;) {
      if (this.isOp('.') && this.peek(1).t === 'id') {
        this.take();
        steps.push({ attr: (this.take() as { v: string }).v });
      } else if (this.isOp('[') && !this.isOp('*', 1)) {
        this.take();
        steps.push({ index: this.expression() });
        this.expect('op', ']');
      } else {
        return steps;
      }
    }
  }

  private primary(): Expr {
    const token = this.take();
    if (token.t === 'num') return { k: 'lit', v: token.v };
    if (token.t === 'str') return { k: 'tpl', raw: token.v };
    if (token.t === 'id') {
      if (token.v === 'true' || token.v === 'false') return { k: 'lit', v: token.v === 'true' };
      if (token.v === 'null') return { k: 'lit', v: null };
      if (this.isOp('(')) return this.call(token.v);
      return { k: 'name', name: token.v };
    }
    if (token.t === 'op' && token.v === '(') {
      const inner = this.expression();
      this.expect('op', ')');
      return inner;
    }
    if (token.t === 'op' && token.v === '[') return this.isFor() ? this.forExpr(false) : this.tuple();
    if (token.t === 'op' && token.v === '{') return this.isFor() ? this.forExpr(true) : this.object();
    return this.fail('unexpected token');
  }

  private isFor(): boolean {
    const token = this.peek();
    return token.t === 'id' && token.v === 'for' && this.peek(1).t === 'id';
  }

  private call(name: string): Expr {
    this.expect('op', '(');
    const args: Expr[] = [];
    let expand = false;
    while (!this.isOp(')')) {
      args.push(this.expression());
      if (this.isOp('...')) {
        this.take();
        expand = true;
      }
      if (!this.isOp(')')) this.expect('op', ',');
    }
    this.take();
    return { k: 'call', name, args, expand };
  }

  private tuple(): Expr {
    const items: Expr[] = [];
    while (!this.isOp(']')) {
      items.push(this.expression());
      if (!this.isOp(']')) this.expect('op', ',');
    }
    this.take();
    return { k: 'tuple', items };
  }

  private object(): Expr {
    const items: Array<[Expr, Expr]> = [];
    while (!this.isOp('}')) {
      // A bare name before `=` or `:` is the key itself, not a reference.
      const keyToken = this.peek();
      let key: Expr;
      if (keyToken.t === 'id' && (this.isOp('=', 1) || this.isOp(':', 1))) {
        this.take();
        key = { k: 'lit', v: keyToken.v };
      } else {
        key = this.expression();
      }
      if (!this.isOp('=')) this.expect('op', ':');
      else this.take();
      items.push([key, this.expression()]);
      if (this.isOp(',')) this.take();
    }
    this.take();
    return { k: 'object', items };
  }

  private forExpr(object: boolean): Expr {
    this.take(); // for
    const first = (this.expect('id') as { v: string }).v;
    let keyVar: string | undefined;
    let valVar = first;
    if (this.isOp(',')) {
      this.take();
      keyVar = first;
      valVar = (this.expect('id') as { v: string }).v;
    }
    const inToken = this.expect('id') as { v: string };
    if (inToken.v !== 'in') this.fail('expected in');
    const of = this.expression();
    this.expect('op', ':');
    let key: Expr | undefined;
    let value = this.expression();
    if (object) {
      this.expect('op', '=>');
      key = value;
      value = this.expression();
      if (this.isOp('...')) this.fail('grouping (...) in a for expression is not supported here');
    }
    let cond: Expr | undefined;
    const ifToken = this.peek();
    if (ifToken.t === 'id' && ifToken.v === 'if') {
      this.take();
      cond = this.expression();
    }
    this.expect('op', object ? '}' : ']');
    return { k: 'for', object, keyVar, valVar, of, key, value, cond };
  }
}

function unescapeHcl(text: string): string {
  return text.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_, c: string) => {
    if (c.length > 1) return String.fromCharCode(Number.parseInt(c.slice(1), 16));
    return ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[c] ?? c;
  });
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The first unknown among `values`, or undefined. */
const firstUnknown = (...values: unknown[]): Unknown | undefined =>
  values.find((v): v is Unknown => v instanceof Unknown);

/** What a value is in a message. */
function describe(value: unknown): string {
  return value instanceof Unknown ? `(known after apply: ${value.what})` : JSON.stringify(value);
}

/**
 * Evaluates the expressions of a module with given variable values, far enough for configuration
 * checks: locals, for_each and count, the common functions and operators, references between
 * resources. What only the provider knows after apply (URLs, a data source's answer) is an `Unknown`
 * that remembers the resource instance it comes from. A service account's email is derived from its
 * account_id, as Google derives it. Anything this evaluator cannot handle throws, naming it, rather
 * than guessing.
 */
export class TerraformEvaluator {
  private readonly cache = new Map<string, unknown>();
  private readonly instanceCache = new Map<TerraformBlock, Instance[]>();
  /** The instance and attribute path each object read from a resource comes from (nested blocks). */
  private readonly origins = new WeakMap<object, { instance: Instance; path: (string | number)[] }>();

  constructor(
    readonly module: TerraformModule,
    private readonly vars: Record<string, unknown>,
  ) {}

  /** The blocks of one resource type (or data source type, with kind 'data'). */
  blocksOf(type: string, kind: 'resource' | 'data' = 'resource'): TerraformBlock[] {
    return this.module.blocks.filter((b) => b.type === type && b.kind === kind);
  }

  /** A variable's value: the one given, else its default; throws when it has neither. */
  variable(name: string): unknown {
    if (name in this.vars) return this.vars[name];
    const declared = this.module.variables.get(name);
    if (!declared) throw new Error(`var.${name} is not declared in ${this.module.dir}`);
    if (!('default' in declared.body))
      throw new Error(`var.${name} (${declared.file}) has no value and no default`);
    return declared.body.default;
  }

  local(name: string): unknown {
    const key = `local.${name}`;
    if (!this.cache.has(key)) {
      const declared = this.module.locals.get(name);
      if (!declared) throw new Error(`local.${name} is not declared in ${this.module.dir}`);
      try {
        this.cache.set(key, this.value(declared.value));
      } catch (error) {
        throw new Error(`${declared.file} local.${name}: ${(error as Error).message}`);
      }
    }
    return this.cache.get(key);
  }

  /** The instances of a block: one per for_each key (in key order), per count index, or the block alone. */
  instances(block: TerraformBlock): Instance[] {
    let instances = this.instanceCache.get(block);
    if (instances) return instances;
    const { body } = block;
    if ('for_each' in body) {
      const each = this.value(body.for_each);
      if (each instanceof Unknown)
        throw new Error(`${block.file} ${block.address}: for_each is ${describe(each)}`);
      const entries: Array<[string, unknown]> = Array.isArray(each)
        ? each.map((v) => [String(v), v])
        : Object.entries(each as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      instances = entries.map(([key, value]) => new Instance(block, key, { each: { key, value } }));
    } else if ('count' in body) {
      const count = this.value(body.count);
      if (typeof count !== 'number')
        throw new Error(`${block.file} ${block.address}: count is ${describe(count)}`);
      instances = Array.from(
        { length: count },
        (_, index) => new Instance(block, index, { count: { index } }),
      );
    } else {
      instances = [new Instance(block, undefined, {})];
    }
    this.instanceCache.set(block, instances);
    return instances;
  }

  /** An attribute (or nested block, as a list of bodies) of an instance, evaluated in its scope. */
  attribute(instance: Instance, name: string): unknown {
    const { body, type } = instance.block;
    if (
      name in body &&
      !['for_each', 'count', 'depends_on', 'lifecycle', 'provider', 'dynamic'].includes(name)
    ) {
      try {
        return this.tag(this.value(body[name], instance.scope), instance, [name]);
      } catch (error) {
        const message = (error as Error).message;
        if (message.startsWith(instance.block.file)) throw error;
        throw new Error(`${instance.where} ${name}: ${message}`);
      }
    }
    if (type === 'google_service_account' && ['email', 'member', 'name', 'id'].includes(name)) {
      const project = this.attribute(instance, 'project');
      const email = this.templateOf(
        [this.attribute(instance, 'account_id'), '@', project, '.iam.gserviceaccount.com'],
        instance,
      );
      if (name === 'email' || email instanceof Unknown) return email;
      return name === 'member' ? `serviceAccount:${email}` : `projects/${project}/serviceAccounts/${email}`;
    }
    return new Unknown(`${instance.address}.${name}`, instance, [name]);
  }

  /** Remembers where the lists and objects inside `value` come from, so a computed attribute read in them is traced. */
  private tag<T>(value: T, instance: Instance, path: (string | number)[]): T {
    if (Array.isArray(value)) {
      this.origins.set(value, { instance, path });
      value.forEach((item, index) => {
        this.tag(item, instance, [...path, index]);
      });
    } else if (isRecord(value) && !(value instanceof Unknown)) {
      this.origins.set(value, { instance, path });
      for (const [key, item] of Object.entries(value)) this.tag(item, instance, [...path, key]);
    }
    return value;
  }

  private templateOf(parts: unknown[], instance: Instance): unknown {
    const unknown = firstUnknown(...parts);
    return unknown
      ? new Unknown(`${instance.address}: ${unknown.what}`, unknown.origin, unknown.path)
      : parts.join('');
  }

  /** A value as hcl2json gives it: literals as they are, strings as templates, lists and objects deeply. */
  value(raw: unknown, scope: Scope = {}): unknown {
    if (typeof raw === 'string') return this.template(raw, scope, false);
    if (Array.isArray(raw)) return raw.map((v) => this.value(v, scope));
    if (isRecord(raw))
      return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, this.value(v, scope)]));
    return raw;
  }

  /** One expression's source text (without `${…}`). */
  expression(text: string, scope: Scope = {}): unknown {
    return this.evaluate(Parser.parse(text), scope);
  }

  /**
   * A template: literal text and `${…}` interpolations. A template that is one interpolation alone
   * keeps its value's type, as in Terraform. `escaped`: the text is still HCL source (a quoted string
   * inside an expression), so its escapes are undone; hcl2json has already undone those of attributes.
   */
  private template(text: string, scope: Scope, escaped: boolean): unknown {
    const parts: unknown[] = [];
    let literal = '';
    let i = 0;
    while (i < text.length) {
      if (text.startsWith('$${', i)) {
        literal += '${';
        i += 3;
      } else if (text.startsWith('${', i)) {
        const end = interpolationEnd(text, i + 2);
        if (literal) parts.push(escaped ? unescapeHcl(literal) : literal);
        literal = '';
        parts.push(this.expression(text.slice(i + 2, end).replace(/^~|~$/g, ''), scope));
        i = end + 1;
      } else if (escaped && text[i] === '\\') {
        literal += text.slice(i, i + 2);
        i += 2;
      } else {
        literal += text[i];
        i++;
      }
    }
    if (literal) parts.push(escaped ? unescapeHcl(literal) : literal);
    if (parts.length === 1 && text.startsWith('${')) return parts[0];
    const unknown = firstUnknown(...parts);
    if (unknown) return new Unknown(text, unknown.origin, unknown.path);
    return parts
      .map((p) => {
        if (typeof p === 'string' || typeof p === 'number' || typeof p === 'boolean') return String(p);
        throw new Error(`cannot interpolate ${describe(p)} into "${text}"`);
      })
      .join('');
  }

  private evaluate(expr: Expr, scope: Scope): unknown {
    switch (expr.k) {
      case 'lit':
        return expr.v;
      case 'tpl':
        return this.template(expr.raw, scope, true);
      case 'name':
        return this.name(expr.name, scope);
      case 'attr':
        return this.getAttr(this.evaluate(expr.of, scope), expr.name);
      case 'index':
        return this.getIndex(this.evaluate(expr.of, scope), this.evaluate(expr.key, scope));
      case 'splat': {
        const source = this.evaluate(expr.of, scope);
        if (source instanceof Unknown) return source;
        const list = source === null ? [] : Array.isArray(source) ? source : [source];
        return list.map((item) =>
          expr.steps.reduce<unknown>(
            (v, step) =>
              'attr' in step
                ? this.getAttr(v, step.attr)
                : this.getIndex(v, this.evaluate(step.index, scope)),
            item,
          ),
        );
      }
      case 'call': {
        // can() is lazy: it answers whether its argument evaluates without an error.
        if (expr.name === 'can') {
          try {
            return !(this.evaluate(expr.args[0]!, scope) instanceof Unknown) || new Unknown('can(…)');
          } catch {
            return false;
          }
        }
        let args = expr.args.map((a) => this.evaluate(a, scope));
        if (expr.expand) args = [...args.slice(0, -1), ...(args.at(-1) as unknown[])];
        return this.call(expr.name, args);
      }
      case 'unary': {
        const x = this.evaluate(expr.x, scope);
        if (x instanceof Unknown) return x;
        return expr.op === '!' ? !x : -(x as number);
      }
      case 'bin':
        return this.binary(expr.op, this.evaluate(expr.a, scope), this.evaluate(expr.b, scope));
      case 'cond': {
        const c = this.evaluate(expr.c, scope);
        if (c instanceof Unknown) return c;
        return this.evaluate(c ? expr.t : expr.f, scope);
      }
      case 'tuple':
        return expr.items.map((item) => this.evaluate(item, scope));
      case 'object':
        return Object.fromEntries(
          expr.items.map(([k, v]) => [String(this.evaluate(k, scope)), this.evaluate(v, scope)]),
        );
      case 'for': {
        const collection = this.evaluate(expr.of, scope);
        if (collection instanceof Unknown) return collection;
        const entries: Array<[unknown, unknown]> = Array.isArray(collection)
          ? collection.map((v, i) => [i, v])
          : Object.entries(collection as Record<string, unknown>).sort(([a], [b]) =>
              a < b ? -1 : a > b ? 1 : 0,
            );
        const results: Array<[unknown, unknown]> = [];
        for (const [k, v] of entries) {
          const inner = { ...scope, [expr.valVar]: v, ...(expr.keyVar ? { [expr.keyVar]: k } : {}) };
          if (expr.cond) {
            const keep = this.evaluate(expr.cond, inner);
            if (keep instanceof Unknown) return keep;
            if (!keep) continue;
          }
          results.push([expr.key ? this.evaluate(expr.key, inner) : k, this.evaluate(expr.value, inner)]);
        }
        if (!expr.object) return results.map(([, v]) => v);
        return Object.fromEntries(results.map(([k, v]) => [String(k), v]));
      }
    }
  }

  private name(name: string, scope: Scope): unknown {
    if (name in scope) return scope[name];
    if (name === 'var' || name === 'local' || name === 'path' || name === 'data') return new Root(name);
    if (this.module.blocks.some((b) => b.kind === 'resource' && b.type === name))
      return new Root('resourceType', name);
    throw new Error(`unknown name "${name}"`);
  }

  private blockValue(block: TerraformBlock): unknown {
    const instances = this.instances(block);
    if ('for_each' in block.body) return Object.fromEntries(instances.map((i) => [i.key, i]));
    if ('count' in block.body) return instances;
    return instances[0];
  }

  private getAttr(of: unknown, name: string): unknown {
    if (of instanceof Unknown) return new Unknown(`${of.what}.${name}`, of.origin, [...of.path, name]);
    if (of instanceof Instance) return this.attribute(of, name);
    if (of instanceof Root) {
      switch (of.kind) {
        case 'var':
          return this.variable(name);
        case 'local':
          return this.local(name);
        case 'path':
          if (name === 'module' || name === 'root') return this.module.dir;
          break;
        case 'data':
          return new Root('dataType', name);
        case 'resourceType':
        case 'dataType': {
          const kind = of.kind === 'dataType' ? 'data' : 'resource';
          const block = this.module.blocks.find(
            (b) => b.kind === kind && b.type === of.type && b.name === name,
          );
          if (block) return this.blockValue(block);
          break;
        }
      }
      throw new Error(`unknown reference ${of.kind === 'resourceType' ? of.type : of.kind}.${name}`);
    }
    if (isRecord(of)) {
      if (name in of) return of[name];
      // An attribute the provider computes (e.g. service_config[0].service): known after apply.
      const origin = this.origins.get(of);
      if (!origin) throw new Error(`the object has no attribute "${name}"`);
      const path = [...origin.path, name];
      const what =
        origin.instance.address + path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('');
      return new Unknown(what, origin.instance, path);
    }
    throw new Error(`cannot read .${name} of ${describe(of)}`);
  }

  private getIndex(of: unknown, key: unknown): unknown {
    if (of instanceof Unknown)
      return new Unknown(`${of.what}[${describe(key)}]`, of.origin, [...of.path, key as string]);
    if (key instanceof Unknown) return key;
    if (Array.isArray(of) && typeof key === 'number' && key < of.length) return of[key];
    if (isRecord(of) && String(key) in of) return of[String(key)];
    throw new Error(
      `no element ${describe(key)} in ${Array.isArray(of) ? `a list of ${of.length}` : 'the object'}`,
    );
  }

  private binary(op: string, a: unknown, b: unknown): unknown {
    if (op === '&&' && (a === false || b === false)) return false;
    if (op === '||' && (a === true || b === true)) return true;
    const unknown = firstUnknown(a, b);
    if (unknown) return unknown;
    const x = a as number;
    const y = b as number;
    switch (op) {
      case '==':
        return deepEqual(a, b);
      case '!=':
        return !deepEqual(a, b);
      case '&&':
      case '||':
        return op === '&&' ? Boolean(a) && Boolean(b) : Boolean(a) || Boolean(b);
      case '<':
        return x < y;
      case '>':
        return x > y;
      case '<=':
        return x <= y;
      case '>=':
        return x >= y;
      case '+':
        return x + y;
      case '-':
        return x - y;
      case '*':
        return x * y;
      case '/':
        return x / y;
      case '%':
        return x % y;
    }
    throw new Error(`unknown operator ${op}`);
  }

  private call(name: string, args: unknown[]): unknown {
    const unknown = firstUnknown(...args);
    if (unknown && name !== 'merge')
      return new Unknown(`${name}(${unknown.what})`, unknown.origin, unknown.path);
    const [a, b, c] = args;
    const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : Object.values(v as object));
    switch (name) {
      case 'tostring':
        return a === null ? null : String(a);
      case 'tonumber':
        return a === null ? null : Number(a);
      case 'max':
        return Math.max(...(args as number[]));
      case 'min':
        return Math.min(...(args as number[]));
      case 'sum':
        return (a as number[]).reduce((total, n) => total + n, 0);
      case 'ceil':
        return Math.ceil(a as number);
      case 'floor':
        return Math.floor(a as number);
      case 'abs':
        return Math.abs(a as number);
      case 'merge':
        return Object.assign({}, ...args.map((arg) => (arg instanceof Unknown ? {} : arg)));
      case 'toset':
        return [...new Set(list(a))].sort();
      case 'tolist':
        return list(a);
      case 'tomap':
        return a;
      case 'concat':
        return args.flatMap((arg) => list(arg));
      case 'flatten':
        return list(a).flat(Number.POSITIVE_INFINITY);
      case 'keys':
        return Object.keys(a as object).sort();
      case 'values':
        return Object.keys(a as object)
          .sort()
          .map((k) => (a as Record<string, unknown>)[k]);
      case 'length':
        return typeof a === 'string' ? a.length : list(a).length;
      case 'contains':
        return list(a).some((v) => deepEqual(v, b));
      case 'lookup':
        return isRecord(a) && String(b) in a ? a[String(b)] : c;
      case 'one':
        if (list(a).length > 1) throw new Error('one() of more than one element');
        return list(a)[0] ?? null;
      case 'coalesce':
        return args.find((v) => v !== null && v !== '') ?? null;
      case 'setproduct':
        return args.reduce<unknown[][]>(
          (acc, set) => acc.flatMap((p) => list(set).map((v) => [...p, v])),
          [[]],
        );
      case 'alltrue':
        return list(a).every((v) => v === true);
      case 'anytrue':
        return list(a).some((v) => v === true);
      case 'regex': {
        const match = new RegExp(String(a)).exec(String(b));
        if (!match) throw new Error(`regex ${a} does not match ${JSON.stringify(b)}`);
        if (match.groups) return match.groups;
        return match.length > 1 ? match.slice(1) : match[0];
      }
      case 'upper':
        return String(a).toUpperCase();
      case 'lower':
        return String(a).toLowerCase();
      case 'trimprefix':
        return String(a).startsWith(String(b)) ? String(a).slice(String(b).length) : a;
      case 'trimsuffix':
        return String(a).endsWith(String(b)) ? String(a).slice(0, -String(b).length) : a;
      case 'startswith':
        return String(a).startsWith(String(b));
      case 'endswith':
        return String(a).endsWith(String(b));
      case 'replace': {
        const pattern = String(b);
        const regex = /^\/(.*)\/$/.exec(pattern);
        return regex
          ? String(a).replace(new RegExp(regex[1]!, 'g'), String(c))
          : String(a).replaceAll(pattern, String(c));
      }
      case 'file':
        return readFileSync(resolvePath(this.module.dir, String(a)), 'utf8');
      case 'jsondecode':
        return JSON.parse(String(a));
      case 'jsonencode':
        return JSON.stringify(a);
      case 'base64encode':
        return Buffer.from(String(a)).toString('base64');
      case 'join':
        return list(b).map(String).join(String(a));
      case 'sha256':
        return createHash('sha256').update(String(a), 'utf8').digest('hex');
      case 'substr':
        return String(a).slice(Number(b), Number(c) < 0 ? undefined : Number(b) + Number(c));
    }
    throw new Error(`function ${name}() is not supported by the evaluator in test/helpers/terraform.ts`);
  }
}
