/** The version this build answers with (`X-Troupe-Version`, `/api/health`). */
export const TROUPE_VERSION = "0.9.0";
