import type { Plugin } from "esbuild";
export declare const zodEnglishOnly: Plugin;
export declare const zodNoJsonSchema: Plugin;
export declare const zodSchemasPure: Plugin;
/** `source` with each top-level schema declaration marked pure, when the module imports zod. */
export declare const markSchemasPure: (source: string) => string;
/** `source` without its schemas' descriptions and examples (`.meta({...})`), which only the documents' generators read. */
export declare function withoutSchemaDocs(source: string, fileName?: string): string;
declare const plugins: Plugin[];
export default plugins;
