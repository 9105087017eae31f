import {
  NO_PROFILE,
  profileFiles,
  type ProfileFiles,
  type Profiles,
} from '../../config/profiles.js';
import type { ExecuteRequest } from '../../contract/index.js';
import type { RunConfigArgs } from '../../executor/index.js';
import type { RunBox } from '../../isolation/index.js';

export type ProfileFilesFor =
  | { readonly ok: true; readonly files: ProfileFiles }
  | { readonly ok: false; readonly error: string };

/**
 * The files of the job's profile with the worker's environment filled in now, when the run
 * starts. A variable the worker lacks is its configuration's fault, not the job's: the error
 * names the variable and the profile, never a value.
 */
export function profileFilesFor(
  request: ExecuteRequest,
  profiles: Profiles,
  env: Readonly<Record<string, string | undefined>>,
): ProfileFilesFor {
  if (request.profile === undefined) return { ok: true, files: NO_PROFILE };
  const profile = profiles.get(request.profile);
  // validateJob has checked the name already; a profile that vanished is the worker's trouble.
  if (profile === undefined) {
    return { ok: false, error: `worker configuration: no profile ${request.profile}` };
  }
  const filled = profileFiles(profile, env);
  if (filled.ok) return { ok: true, files: filled.value };
  const names = filled.missing.join(', ');
  return {
    ok: false,
    error: `worker configuration: profile ${JSON.stringify(request.profile)} needs ${names} in the worker's environment (PROFILES_FILE), which ${filled.missing.length === 1 ? 'is' : 'are'} not set`,
  };
}

/**
 * Writes the profile's MCP config and settings into the run's box, where only the run can read
 * them and whence they go with it, and says how the CLI is to find them.
 */
export async function writeRunConfig(box: RunBox, files: ProfileFiles): Promise<RunConfigArgs> {
  const write = (name: string, content: string | null): Promise<string | null> =>
    content === null ? Promise.resolve(null) : box.writePrivateFile(name, content);
  return {
    mcpConfigFile: await write('profile-mcp.json', files.mcpConfig),
    settingsFile: await write('profile-settings.json', files.settings),
    settingSources: files.settingSources,
  };
}
