import { describe, expect, it } from "vitest";
import { type AwsFiles, parseAwsIni, s3SettingsFrom } from "./s3-config.js";

const CONFIG = `
# a comment
[default]
region = eu-central-1

[profile lab]
region = us-west-2
services = lab-services
s3 =
  addressing_style = virtual

[services lab-services]
s3 =
  endpoint_url = http://lab.example:9000

[profile minio]
endpoint_url = http://127.0.0.1:9000
aws_access_key_id = from-config
aws_secret_access_key = config-secret
`;

const CREDENTIALS = `
[default]
aws_access_key_id = default-key
aws_secret_access_key = default-secret

[lab]
aws_access_key_id = lab-key
aws_secret_access_key = lab-secret
aws_session_token = lab-token
`;

function files(config = CONFIG, credentials = CREDENTIALS): AwsFiles {
  return {
    config: parseAwsIni(config),
    configPath: "/home/u/.aws/config",
    credentials: parseAwsIni(credentials),
    credentialsPath: "/home/u/.aws/credentials",
  };
}

describe("parseAwsIni", () => {
  it("reads sections, pairs and nested blocks; skips comments", () => {
    const parsed = parseAwsIni(CONFIG);
    expect(parsed.get("default")).toEqual({ region: "eu-central-1" });
    expect(parsed.get("profile lab")).toEqual({
      region: "us-west-2",
      services: "lab-services",
      s3: { addressing_style: "virtual" },
    });
    expect(parsed.get("services lab-services")).toEqual({ s3: { endpoint_url: "http://lab.example:9000" } });
  });
});

describe("s3SettingsFrom", () => {
  it("default profile: region and keys from the files, AWS's endpoint, virtual-hosted style", () => {
    const settings = s3SettingsFrom({}, files());
    expect(settings).toMatchObject({
      profile: "default",
      region: "eu-central-1",
      forcePathStyle: false,
      credentials: { accessKeyId: "default-key", secretAccessKey: "default-secret" },
    });
    expect(settings.endpoint).toBeUndefined();
    expect(settings.credentialsFrom).toBe("profile default in /home/u/.aws/credentials");
  });

  it("environment keys, region and endpoint win over the files; a custom endpoint means path style", () => {
    const settings = s3SettingsFrom(
      {
        AWS_ACCESS_KEY_ID: "env-key",
        AWS_SECRET_ACCESS_KEY: "env-secret",
        AWS_SESSION_TOKEN: "env-token",
        AWS_REGION: "ap-south-1",
        AWS_ENDPOINT_URL: "http://127.0.0.1:7480",
      },
      files(),
    );
    expect(settings).toMatchObject({
      region: "ap-south-1",
      regionFrom: "AWS_REGION",
      endpoint: "http://127.0.0.1:7480",
      endpointFrom: "AWS_ENDPOINT_URL",
      forcePathStyle: true,
      credentials: { accessKeyId: "env-key", secretAccessKey: "env-secret", sessionToken: "env-token" },
      credentialsFrom: "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    });
  });

  it("AWS_ENDPOINT_URL_S3 before AWS_ENDPOINT_URL; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS drops both", () => {
    const env = { AWS_ENDPOINT_URL: "http://global:1", AWS_ENDPOINT_URL_S3: "http://s3:2" };
    expect(s3SettingsFrom(env, files()).endpoint).toBe("http://s3:2");
    expect(
      s3SettingsFrom({ ...env, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true" }, files()).endpoint,
    ).toBeUndefined();
  });

  it("AWS_PROFILE: the profile's services block endpoint, its addressing style, its session token", () => {
    const settings = s3SettingsFrom({ AWS_PROFILE: "lab" }, files());
    expect(settings).toMatchObject({
      profile: "lab",
      region: "us-west-2",
      endpoint: "http://lab.example:9000",
      forcePathStyle: false,
      credentials: { accessKeyId: "lab-key", secretAccessKey: "lab-secret", sessionToken: "lab-token" },
    });
  });

  it("keys written in the config file count when the credentials file has none for the profile", () => {
    const settings = s3SettingsFrom({ AWS_PROFILE: "minio" }, files());
    expect(settings).toMatchObject({
      region: "us-east-1",
      regionFrom: "the default",
      endpoint: "http://127.0.0.1:9000",
      forcePathStyle: true,
      credentials: { accessKeyId: "from-config", secretAccessKey: "config-secret" },
      credentialsFrom: "profile minio in /home/u/.aws/config",
    });
  });

  it("no static keys anywhere: left to the SDK's chain (SSO, web identity, instance roles)", () => {
    const settings = s3SettingsFrom({ AWS_PROFILE: "sso" }, files("", ""));
    expect(settings.credentials).toBeUndefined();
    expect(settings.credentialsFrom).toContain("default chain");
  });
});
