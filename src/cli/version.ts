/** The version of this Warden, as `warden --version` and system.hello report it. */
export const VERSION = '0.1.0';
