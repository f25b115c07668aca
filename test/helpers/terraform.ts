import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

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
 * no state and no network. Fails with a clear message when `terraform` is not on PATH.
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
        reject(
          error.code === 'ENOENT'
            ? new Error(
                'terraform is required by this test (it evaluates infra/terraform with `terraform console`) ' +
                  'but is not on PATH: install Terraform >= 1.5 (CI has /usr/local/bin/terraform).',
              )
            : error,
        );
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
