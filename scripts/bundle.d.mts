/** See bundle.mjs. */
export declare function bundleLikeAgent(entry: string, outfile: string): Promise<{ file: string; bytes: number }>;
export declare function bundleAll(): Promise<{ file: string; bytes: number }[]>;
