// Where an s3:// pull gets its region, endpoint, addressing style and static credentials: the AWS
// environment variables and the shared config/credentials files, read the way the AWS CLI reads them.
// Pure apart from reading the two files, so a table of cases tests it; the SDK's own chain (SSO, web
// identity, container and instance metadata) is left to the SDK when no static keys are configured.
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** One profile's settings; `s3` holds the nested `s3 =` block (endpoint_url, addressing_style). */
export interface IniProfile {
  [key: string]: string | Record<string, string> | undefined;
  s3?: Record<string, string>;
}

/**
 * Parses an AWS config or credentials file: `[default]`, `[profile NAME]` (config) or `[NAME]`
 * (credentials), `key = value`, and nested blocks (`s3 =` then indented `key = value` lines).
 * Section names keep their prefix ("profile x", "services y"); comments start with # or ;.
 */
export function parseAwsIni(text: string): Map<string, IniProfile> {
  const sections = new Map<string, IniProfile>();
  let current: IniProfile | undefined;
  let nested: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*([#;].*)?$/.test(raw)) continue;
    const section = /^\s*\[\s*([^\]]+?)\s*\]\s*$/.exec(raw);
    if (section?.[1] !== undefined) {
      current = sections.get(section[1]) ?? {};
      sections.set(section[1], current);
      nested = undefined;
      continue;
    }
    const pair = /^(\s*)([^=\s][^=]*?)\s*=\s*(.*?)\s*$/.exec(raw);
    if (!pair || !current) continue;
    const [, indent = "", key = "", value = ""] = pair;
    if (indent.length > 0 && nested) {
      nested[key.toLowerCase()] = value;
      continue;
    }
    if (value === "") {
      nested = {};
      current[key.toLowerCase()] = nested;
    } else {
      nested = undefined;
      current[key.toLowerCase()] = value;
    }
  }
  return sections;
}

export interface S3Settings {
  profile: string;
  region: string;
  /** Where the region came from, for error messages. */
  regionFrom: string;
  /** A custom endpoint (S3-compatible servers, VPC endpoints); undefined: AWS's own. */
  endpoint?: string;
  endpointFrom?: string;
  /** Path-style URLs (http://host/bucket/key): the default with a custom endpoint. */
  forcePathStyle: boolean;
  /** Static keys from the environment or the files; undefined: the SDK's default chain decides. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Where the credentials come from, in words ("AWS_ACCESS_KEY_ID", "profile dev in ~/.aws/credentials"). */
  credentialsFrom: string;
}

export interface AwsFiles {
  config: Map<string, IniProfile>;
  configPath: string;
  credentials: Map<string, IniProfile>;
  credentialsPath: string;
}

const DEFAULT_REGION = "us-east-1";

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== "" ? value.trim() : undefined;
}

function text(profile: IniProfile | undefined, key: string): string | undefined {
  const value = profile?.[key];
  return typeof value === "string" ? nonEmpty(value) : undefined;
}

function block(profile: IniProfile | undefined, key: string): Record<string, string> | undefined {
  const value = profile?.[key];
  return typeof value === "object" ? value : undefined;
}

/** Settings from the environment and parsed files (no I/O): the precedence of the AWS CLI and SDKs. */
export function s3SettingsFrom(env: NodeJS.ProcessEnv, files: AwsFiles): S3Settings {
  const profile = nonEmpty(env.AWS_PROFILE) ?? nonEmpty(env.AWS_DEFAULT_PROFILE) ?? "default";
  const configProfile =
    files.config.get(profile === "default" ? "default" : `profile ${profile}`) ??
    (profile === "default" ? files.config.get("profile default") : undefined);
  const credentialsProfile = files.credentials.get(profile);

  const envRegion = nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION);
  const fileRegion = text(configProfile, "region");
  const region = envRegion ?? fileRegion ?? DEFAULT_REGION;
  const regionFrom = envRegion
    ? env.AWS_REGION
      ? "AWS_REGION"
      : "AWS_DEFAULT_REGION"
    : fileRegion
      ? `profile ${profile} in ${files.configPath}`
      : "the default";

  // Configured endpoints: service-specific before global, environment before files; a `services`
  // section named by the profile holds per-service settings too.
  let endpoint: string | undefined;
  let endpointFrom: string | undefined;
  const ignoreConfigured = /^true$/i.test(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? "");
  if (!ignoreConfigured) {
    const servicesName = text(configProfile, "services");
    const services = servicesName ? files.config.get(`services ${servicesName}`) : undefined;
    const candidates: Array<[string | undefined, string]> = [
      [nonEmpty(env.AWS_ENDPOINT_URL_S3), "AWS_ENDPOINT_URL_S3"],
      [nonEmpty(env.AWS_ENDPOINT_URL), "AWS_ENDPOINT_URL"],
      [nonEmpty(block(services, "s3")?.endpoint_url), `services ${servicesName} in ${files.configPath}`],
      [nonEmpty(block(configProfile, "s3")?.endpoint_url), `profile ${profile} (s3) in ${files.configPath}`],
      [text(configProfile, "endpoint_url"), `profile ${profile} in ${files.configPath}`],
    ];
    const found = candidates.find(([value]) => value !== undefined);
    if (found) [endpoint, endpointFrom] = found;
  }
  const addressingStyle = nonEmpty(block(configProfile, "s3")?.addressing_style)?.toLowerCase();
  const forcePathStyle =
    addressingStyle === "path" || (addressingStyle !== "virtual" && endpoint !== undefined);

  let credentials: S3Settings["credentials"];
  let credentialsFrom = `the AWS SDK's default chain (profile ${profile})`;
  const envKey = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const envSecret = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  if (envKey && envSecret) {
    credentials = { accessKeyId: envKey, secretAccessKey: envSecret };
    const token = nonEmpty(env.AWS_SESSION_TOKEN);
    if (token) credentials.sessionToken = token;
    credentialsFrom = "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY";
  } else {
    // The credentials file wins over keys written in the config file, as in the AWS CLI.
    for (const [section, path] of [
      [credentialsProfile, files.credentialsPath],
      [configProfile, files.configPath],
    ] as const) {
      const key = text(section, "aws_access_key_id");
      const secret = text(section, "aws_secret_access_key");
      if (key && secret) {
        credentials = { accessKeyId: key, secretAccessKey: secret };
        const token = text(section, "aws_session_token");
        if (token) credentials.sessionToken = token;
        credentialsFrom = `profile ${profile} in ${path}`;
        break;
      }
    }
  }

  return {
    profile,
    region,
    regionFrom,
    ...(endpoint === undefined ? {} : { endpoint, endpointFrom }),
    forcePathStyle,
    ...(credentials === undefined ? {} : { credentials }),
    credentialsFrom,
  };
}

/** The shared files' paths: AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/config|credentials. */
export function awsFilePaths(env: NodeJS.ProcessEnv): { configPath: string; credentialsPath: string } {
  const home = nonEmpty(env.HOME) ?? homedir();
  return {
    configPath: nonEmpty(env.AWS_CONFIG_FILE) ?? join(home, ".aws", "config"),
    credentialsPath: nonEmpty(env.AWS_SHARED_CREDENTIALS_FILE) ?? join(home, ".aws", "credentials"),
  };
}

async function readIni(path: string): Promise<Map<string, IniProfile>> {
  try {
    return parseAwsIni(await readFile(path, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw error;
  }
}

/** Reads the environment and the shared files (a missing file is an empty one). */
export async function loadS3Settings(env: NodeJS.ProcessEnv = process.env): Promise<S3Settings> {
  const { configPath, credentialsPath } = awsFilePaths(env);
  const [config, credentials] = await Promise.all([readIni(configPath), readIni(credentialsPath)]);
  return s3SettingsFrom(env, { config, configPath, credentials, credentialsPath });
}
