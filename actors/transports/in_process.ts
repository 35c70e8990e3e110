/** Ships with the runtime package; this path stays for the app's imports. */
export * from "../runtime/transports/in_process.ts";
