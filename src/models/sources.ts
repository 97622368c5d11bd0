// Model source URIs, parsed once: hf://, https:// (and http://), s3://, file:// and plain paths,
// tiny://. Pure (no I/O); every error names the part of the URI that is wrong.
import { fileURLToPath } from "node:url";
import { ModelSourceError } from "./errors.js";
import { TINY_DTYPES, TINY_SHAPES, type TinyDtype, type TinyShapeName } from "./tiny.js";

export interface HfSource {
  kind: "hf";
  uri: string;
  /** ORG/REPO */
  repo: string;
  /** A file in the repo, when the URI names one. */
  file?: string;
  /** A quantization tag (Q4_K_M, Q8_0, F16, ...) that picks the GGUF file, when given. */
  quant?: string;
  /** Branch, tag or commit; "main" when the URI names none. */
  revision: string;
}

export interface HttpsSource {
  kind: "https";
  uri: string;
  /** The URL without its #sha256= fragment. */
  url: string;
  /** Lower-case hex, from a #sha256=HEX suffix. */
  sha256?: string;
  /** The last path segment, for naming the cached file. */
  fileName: string;
}

export interface S3Source {
  kind: "s3";
  uri: string;
  bucket: string;
  key: string;
}

export interface FileSource {
  kind: "file";
  uri: string;
  /** As written: absolute, or relative to the caller's base directory. */
  path: string;
}

export interface TinySource {
  kind: "tiny";
  uri: string;
  shape: TinyShapeName;
  dtype: TinyDtype;
}

export type ModelSource = HfSource | HttpsSource | S3Source | FileSource | TinySource;

const SCHEMES = ["hf", "https", "http", "s3", "file", "tiny"] as const;

function invalid(uri: string, detail: string): ModelSourceError {
  return new ModelSourceError("BERTH_MODEL_SOURCE", `${uri}: ${detail}`);
}

/** Parses a model source URI; throws ModelSourceError (BERTH_MODEL_SOURCE) naming the wrong part. */
export function parseModelSource(uri: string): ModelSource {
  if (typeof uri !== "string" || uri.trim() === "") {
    throw new ModelSourceError("BERTH_MODEL_SOURCE", "the model source is empty");
  }
  if (uri !== uri.trim()) throw invalid(JSON.stringify(uri), "leading or trailing whitespace");
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(uri)?.[1];
  if (scheme === undefined) return { kind: "file", uri, path: uri };
  switch (scheme) {
    case "hf":
      return parseHf(uri);
    case "https":
    case "http":
      return parseHttps(uri);
    case "s3":
      return parseS3(uri);
    case "file":
      return parseFile(uri);
    case "tiny":
      return parseTiny(uri);
    default:
      throw invalid(
        uri,
        `unknown scheme "${scheme}://" (one of ${SCHEMES.map((s) => `${s}://`).join(", ")})`,
      );
  }
}

// The hub's repo name rule (huggingface_hub's validate_repo_id): word characters, '-' and '.',
// not starting or ending with '-' or '.', no '--' or '..', at most 96 characters.
const REPO_PART = /^[A-Za-z0-9_](?:[\w.-]*[A-Za-z0-9_])?$/;
const QUANT = /^[A-Za-z0-9_]+$/;
const REVISION = /^[\w.\-/]+$/;

function checkRepoPart(uri: string, part: string, what: "organization" | "repository"): void {
  if (part === "") throw invalid(uri, `the ${what} name is empty (expected hf://ORG/REPO)`);
  if (!REPO_PART.test(part) || part.includes("--") || part.includes("..") || part.length > 96) {
    throw invalid(
      uri,
      `the ${what} name "${part}" is not a valid hub name (letters, digits, '-', '_', '.'; no '--' or '..')`,
    );
  }
}

function parseHf(uri: string): HfSource {
  let rest = uri.slice("hf://".length);
  if (rest.includes("?") || rest.includes("#")) {
    throw invalid(uri, `"${rest.slice(rest.search(/[?#]/))}": hf:// sources take no query or fragment`);
  }
  let revision = "main";
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    revision = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (revision === "") throw invalid(uri, "the revision after '@' is empty");
    if (
      !REVISION.test(revision) ||
      revision.includes("..") ||
      revision.startsWith("/") ||
      revision.endsWith("/")
    ) {
      throw invalid(uri, `the revision "${revision}" is not a branch, tag or commit name`);
    }
  }
  const parts = rest.split("/");
  const org = parts[0] ?? "";
  let repo = parts[1];
  if (repo === undefined) {
    throw invalid(
      uri,
      `"${org}" names no repository (expected hf://ORG/REPO, e.g. hf://openai-community/gpt2)`,
    );
  }
  let quant: string | undefined;
  const colon = repo.indexOf(":");
  if (colon >= 0) {
    quant = repo.slice(colon + 1);
    repo = repo.slice(0, colon);
    if (quant === "") throw invalid(uri, "the quantization after ':' is empty (e.g. :Q4_K_M)");
    if (!QUANT.test(quant))
      throw invalid(uri, `the quantization "${quant}" is not a tag like Q4_K_M or Q8_0`);
  }
  checkRepoPart(uri, org, "organization");
  checkRepoPart(uri, repo, "repository");
  const fileParts = parts.slice(2);
  if (quant !== undefined && fileParts.length > 0) {
    throw invalid(
      uri,
      `give either a file ("/${fileParts.join("/")}") or a quantization (":${quant}"), not both`,
    );
  }
  const source: HfSource = { kind: "hf", uri, repo: `${org}/${repo}`, revision };
  if (fileParts.length > 0) {
    const file = fileParts.join("/");
    if (fileParts.some((segment) => segment === "" || segment === "." || segment === "..")) {
      throw invalid(uri, `the file path "${file}" has an empty, "." or ".." segment`);
    }
    if (file.includes(":")) throw invalid(uri, `the file path "${file}" contains ':'`);
    source.file = file;
  }
  if (quant !== undefined) source.quant = quant;
  return source;
}

function parseHttps(uri: string): HttpsSource {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw invalid(uri, "not a valid URL");
  }
  if (url.hostname === "") throw invalid(uri, "the URL has no host");
  if (url.username !== "" || url.password !== "") {
    throw invalid(uri, "credentials in the URL are not accepted (they would be logged); use a signed URL");
  }
  let sha256: string | undefined;
  if (url.hash !== "") {
    const fragment = url.hash.slice(1);
    const match = /^sha256=([0-9a-fA-F]{64})$/.exec(fragment);
    if (!match?.[1]) {
      throw invalid(uri, `the fragment "#${fragment}" is not #sha256= followed by 64 hex digits`);
    }
    sha256 = match[1].toLowerCase();
    url.hash = "";
  }
  const segments = url.pathname.split("/");
  const fileName = decodeURIComponent(segments[segments.length - 1] ?? "");
  if (fileName === "") throw invalid(uri, `the path "${url.pathname}" names no file`);
  const source: HttpsSource = { kind: "https", uri, url: url.href, fileName };
  if (sha256 !== undefined) source.sha256 = sha256;
  return source;
}

// S3 bucket names: 3-63 characters, lower-case letters, digits, '.', '-', starting and ending with
// a letter or digit.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function parseS3(uri: string): S3Source {
  const rest = uri.slice("s3://".length);
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? "" : rest.slice(slash + 1);
  if (bucket === "") throw invalid(uri, "the bucket is empty (expected s3://BUCKET/KEY)");
  if (!BUCKET.test(bucket) || bucket.includes("..")) {
    throw invalid(uri, `the bucket "${bucket}" is not a valid S3 bucket name (3-63 of a-z, 0-9, '.', '-')`);
  }
  if (key === "" || key.endsWith("/"))
    throw invalid(uri, "the key names no object (expected s3://BUCKET/KEY)");
  return { kind: "s3", uri, bucket, key };
}

function parseFile(uri: string): FileSource {
  let path: string;
  if (uri.startsWith("file:///")) {
    try {
      path = fileURLToPath(uri);
    } catch (error) {
      throw invalid(uri, (error as Error).message);
    }
  } else {
    // file://relative/path: relative to the caller's base directory (a spec file's folder).
    path = uri.slice("file://".length);
  }
  if (path === "") throw invalid(uri, "the path is empty");
  return { kind: "file", uri, path };
}

function parseTiny(uri: string): TinySource {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw invalid(uri, "not a valid tiny:// URI (tiny://SHAPE[?dtype=D])");
  }
  const shape = url.hostname || url.pathname.replace(/^\/+/, "");
  if (!(shape in TINY_SHAPES)) {
    throw invalid(uri, `unknown tiny shape "${shape}" (one of ${Object.keys(TINY_SHAPES).join(", ")})`);
  }
  for (const key of url.searchParams.keys()) {
    if (key !== "dtype") throw invalid(uri, `unknown parameter "${key}" (tiny:// takes dtype)`);
  }
  const dtype = url.searchParams.get("dtype") ?? "f16";
  if (!(TINY_DTYPES as readonly string[]).includes(dtype)) {
    throw invalid(uri, `unknown dtype "${dtype}" (one of ${TINY_DTYPES.join(", ")})`);
  }
  return { kind: "tiny", uri, shape: shape as TinyShapeName, dtype: dtype as TinyDtype };
}

/** Parses tiny://SHAPE[?dtype=D]; undefined when the source is not a tiny:// one. */
export function parseTinySource(source: string): { shape: TinyShapeName; dtype: TinyDtype } | undefined {
  if (!source.startsWith("tiny://")) return undefined;
  const { shape, dtype } = parseTiny(source);
  return { shape, dtype };
}

/**
 * Picks the GGUF file of a quantization among a repo's files, as llama-server's -hf and Ollama do:
 * the tag matches a `-TAG.gguf` / `.TAG.gguf` suffix (case-insensitive); split files pick their
 * first part. Returns the file, or the error listing what the repo offers.
 */
export function selectGgufFile(
  uri: string,
  files: readonly string[],
  quant: string | undefined,
): { file: string } | { error: ModelSourceError } {
  const ggufs = files.filter((file) => file.toLowerCase().endsWith(".gguf"));
  const firstParts = ggufs.filter(
    (file) => !/-\d{5}-of-\d{5}\.gguf$/i.test(file) || /-00001-of-\d{5}\.gguf$/i.test(file),
  );
  const tagOf = (file: string): string => {
    const base = (file.split("/").pop() ?? file).replace(/(-\d{5}-of-\d{5})?\.gguf$/i, "");
    return /[-.]([A-Za-z0-9_]+)$/.exec(base)?.[1] ?? base;
  };
  const choices = (): string => {
    const tags = [...new Set(firstParts.map(tagOf))].sort();
    return tags.length === 0 ? "" : ` (choices: ${tags.map((tag) => `:${tag}`).join(", ")})`;
  };
  if (ggufs.length === 0) {
    return {
      error: new ModelSourceError(
        "BERTH_MODEL_NEEDS_CONVERSION",
        `${uri}: the repository holds no .gguf file`,
      ),
    };
  }
  if (quant === undefined) {
    if (firstParts.length === 1 && firstParts[0]) return { file: firstParts[0] };
    return {
      error: new ModelSourceError(
        "BERTH_MODEL_SOURCE_AMBIGUOUS",
        `${uri}: the repository holds ${firstParts.length} GGUF files; name one with :QUANT${choices()}`,
      ),
    };
  }
  const wanted = quant.toLowerCase();
  const matches = firstParts.filter((file) => tagOf(file).toLowerCase() === wanted);
  if (matches.length === 1 && matches[0]) return { file: matches[0] };
  if (matches.length === 0) {
    return {
      error: new ModelSourceError(
        "BERTH_MODEL_SOURCE_NOT_FOUND",
        `${uri}: no GGUF file of quantization ${quant}${choices()}`,
      ),
    };
  }
  return {
    error: new ModelSourceError(
      "BERTH_MODEL_SOURCE_AMBIGUOUS",
      `${uri}: ${matches.length} GGUF files match ${quant} (${matches.join(", ")}); name the file instead of the quantization`,
    ),
  };
}
