import { execFileSync } from 'node:child_process';

/** A program the tests run from the machine (not from node_modules), and how to get it. */
export interface MachineTool {
  /** The command looked up on PATH. */
  command: string;
  /** Which tests or helper need it, for the message. */
  neededBy: string;
  /** The shell command that installs it. */
  install: string;
}

/** Java 17 runs the Firestore emulator that the integration and slow tiers start. */
export const JAVA: MachineTool = {
  command: 'java',
  neededBy: 'the Firestore emulator (the integration and slow tiers start it)',
  install: 'sudo apt-get install -y openjdk-17-jre-headless',
};

/** Terraform's own release of the version the deploy uses (cloudbuild.yaml), for this machine. */
export const TERRAFORM_VERSION = '1.11.4';

/**
 * Terraform evaluates infra/terraform in the unit tier (test/unit/infra/queues-tf.test.ts): a local
 * binary, no providers and no network. The install command fetches HashiCorp's release for this
 * machine's system and processor.
 */
export function terraformTool(platform = process.platform, arch = process.arch): MachineTool {
  const goArch = arch === 'x64' ? 'amd64' : arch === 'ia32' ? '386' : arch;
  const zip = `terraform_${TERRAFORM_VERSION}_${platform}_${goArch}.zip`;
  const install =
    platform === 'darwin'
      ? 'brew install hashicorp/tap/terraform'
      : `curl -fsSLO https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}/${zip} && ` +
        `sudo unzip -o ${zip} terraform -d /usr/local/bin && rm ${zip}`;
  return { command: 'terraform', neededBy: 'test/unit/infra/queues-tf.test.ts (terraform console)', install };
}

/** The message for a tool that is not on PATH: what needs it and the command that installs it. */
export function missingToolMessage(tool: MachineTool): string {
  return `${tool.command} is not on PATH; it is needed by ${tool.neededBy}. Install it with:\n  ${tool.install}`;
}

/** The tool's path on PATH; throws {@link missingToolMessage} when it is not there. */
export function requireTool(tool: MachineTool): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${tool.command}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(missingToolMessage(tool));
  }
}
