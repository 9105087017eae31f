export {
  setUpIsolation,
  type Isolation,
  type IsolationMode,
  type IsolationSettings,
  type LeaseClearing,
  type RunDiskUse,
} from './set-up.js';
export { mustBeOutOfReach, type RunBox } from './box.js';
export { DirectoryInUseError, IsolationError } from './errors.js';
export { endLease, leasesOf } from './uid-pool.js';
export { clearUid } from './tools.js';
export { weakHostSettings, type WeakHostSetting } from './host-settings.js';
export { capabilityWarnings } from './worker-capabilities.js';
