"""Hand-written redaction cases in the contexts a coding agent produces.

Every value below was generated at random for these tests; none is a live credential. Each
`SecretCase` lists the secrets that must be gone after `Redactor.redact_text` and the kinds it
must report, in order of position; each `CLEAN_CASES` text must come back unchanged; each
`RULE_SAMPLES` text must be found by the rule it is filed under, so every shipped rule has a
case here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Prefixes are split from the random part so that a secret scanner run over this repository
# does not report the test data.
AWS_KEY_ID = "AKIA" + "LCFMAHYX2NCEWTW2"
AWS_SECRET = "C6rVEQVZAAjTpGCVoObt/kX3n5QVw1Jj7PuSp/1s"
GITHUB_PAT = "ghp_" + "4gN5ZrUA6qQUbFKqpk7oBFcxkJNDpZURxWlm"
GITHUB_APP = "ghs_" + "FIyNaglG3P7RnvRpV8mt42ygWeK736jHKE7k"
GITLAB_PAT = "glpat-" + "JRqjZHHnd7w91zyB31aK"
SLACK_BOT = "xoxb-" + "516431391974-0987623853694-BDYhVMcaZkGlgnVjyDton0Jg"
STRIPE_LIVE = "sk_" + "live_" + "btJtZLZ5JPUDFwXaAOghvwg9"
ANTHROPIC = (
    "sk-ant-" + "api03-t99T1HSEGYmhnCLienhw0Cf2rPNSuweMElmBuFaBskc4lC0YKkR7X5zWi4zqP4ZvHpb6mDymNAv5u8EmW69Sclv57xkgUAA"
)
OPENAI = "sk-proj-" + "pIAyf1FCcos-QRTMPZYepJxZ0-oX2IS19rl5aPd__gGQ8Z69"
NPM = "npm_" + "xhudsNmnp0vIaenAs4MR5go3gfhc15X87Fpl"
HUGGINGFACE = "hf_" + "q6bFNzhgb9Q3f4Uc7Y16AT8a6CkbfktxV5"
GCP = "AIza" + "HaTiphqMWmUUUz93eBOX_Oro_f0DK19wWoH"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    + ".eyJzdWIiOiJhZ2VudC03IiwiaWF0IjoxNzAwMDAwMDAwfQ"
    + ".UWz-DD--fI52AUqxw1wfRTv6zHU6xkAtrrGpu-QSvn4"
)
OPAQUE = "1nilB-tZIgHRD-t-dH9cmd7-2QCJQgUv-bxRDDWa"
BASIC = "ZGVwbG95OlphU0RxR3J0eWZ5Wmw1bVM="  # base64("deploy:ZaSDqGrtyfyZl5mS")
API_KEY = "mVUOznLTMd9QG5G6XsuoxIH0KkOd0Xzm"
PASSWORD = "Mo3GDz!4XXCL@b"
URL_PASSWORD = "evzcWkU7hxcd"
OTHER_PASSWORD = "EOhgWk8HbgQs0gn4"
SESSION_SECRET = "94a911e3238db4d337f09144522daa58"
YAML_PASSWORD = "c0rrect-h0rse-Battery-9"
PEM_LINES = (
    "sZjeWrfIr4iEquD0C46EMCAlIyqVm0AFtBoyZv0sU8Yt7NGOCpBrEpuuS62W85J0",
    "9dDwNDmHv4nlJQSjBNK/l3Oe57/OoGrIZ+4aPsjOufQK7C4RY/RXWb+yQ8MvCpqd",
    "12kA65yMYQlbDneBS+8eYy5LD6gy2NMsIn8eFUMDsixVOTEDPSLa93sQm48/R/38",
    "M6QXDBT509xJ9s91BDcAJIZB9EwCBonDaInW7sgB3utwm5valtXZNISH54e1hd74",
)
_HEADER = "RSA " + "PRIVATE KEY-----"
RSA_BLOCK = "-----BEGIN " + _HEADER + "\n" + "\n".join(PEM_LINES) + "\n-----END " + _HEADER
# The same block as it appears inside JSON text: literal backslash-n, not newlines.
RSA_BLOCK_ESCAPED = RSA_BLOCK.replace("\n", "\\n")


@dataclass(frozen=True)
class SecretCase:
    name: str
    text: str
    secrets: tuple[str, ...]
    kinds: tuple[str, ...]
    expected: str | None = None  # the exact redacted text, where it matters


SECRET_CASES: tuple[SecretCase, ...] = (
    SecretCase(
        "shell-export-aws",
        f"export AWS_ACCESS_KEY_ID={AWS_KEY_ID}\nexport AWS_SECRET_ACCESS_KEY={AWS_SECRET}\naws s3 ls s3://builds/\n",
        (AWS_KEY_ID, AWS_SECRET),
        ("aws-access-token", "aws-secret-access-key"),
        "export AWS_ACCESS_KEY_ID=[REDACTED:aws-access-token]\n"
        "export AWS_SECRET_ACCESS_KEY=[REDACTED:aws-secret-access-key]\n"
        "aws s3 ls s3://builds/\n",
    ),
    SecretCase(
        "dotenv-file",
        "# local settings, never commit\n"
        "DEBUG=true\n"
        f"DATABASE_URL=postgres://app:{URL_PASSWORD}@db.internal:5432/app\n"
        f"STRIPE_SECRET_KEY={STRIPE_LIVE}\n"
        f"OPENAI_API_KEY={OPENAI}\n"
        f"SESSION_SECRET={SESSION_SECRET}\n",
        (URL_PASSWORD, STRIPE_LIVE, OPENAI, SESSION_SECRET),
        ("url-password", "stripe-access-token", "openai-api-key", "keyword-password"),
    ),
    SecretCase(
        "yaml-config",
        "database:\n"
        "  host: db.example.com\n"
        "  port: 5432\n"
        "  username: app\n"
        f'  password: "{YAML_PASSWORD}"\n'
        "slack:\n"
        f"  bot_token: {SLACK_BOT}\n"
        "huggingface:\n"
        f"  token: '{HUGGINGFACE}'\n",
        (YAML_PASSWORD, SLACK_BOT, HUGGINGFACE),
        ("keyword-password", "slack-bot-token", "huggingface-access-token"),
        "database:\n"
        "  host: db.example.com\n"
        "  port: 5432\n"
        "  username: app\n"
        '  password: "[REDACTED:keyword-password]"\n'
        "slack:\n"
        "  bot_token: [REDACTED:slack-bot-token]\n"
        "huggingface:\n"
        "  token: '[REDACTED:huggingface-access-token]'\n",
    ),
    SecretCase(
        "json-escaped-pem",
        '{"type": "service_account", "private_key": "'
        + RSA_BLOCK_ESCAPED
        + '\\n", "client_email": "agent@demo.iam.gserviceaccount.com"}',
        (RSA_BLOCK_ESCAPED, *PEM_LINES),
        ("private-key",),
        '{"type": "service_account", "private_key": "[REDACTED:private-key]\\n", '
        '"client_email": "agent@demo.iam.gserviceaccount.com"}',
    ),
    SecretCase(
        "multiline-pem",
        "Here is the deploy key:\n" + RSA_BLOCK + "\nUse it with ssh -i.",
        (RSA_BLOCK, *PEM_LINES),
        ("private-key",),
        "Here is the deploy key:\n[REDACTED:private-key]\nUse it with ssh -i.",
    ),
    SecretCase(
        "truncated-pem",
        "$ cat id_ecdsa\n-----BEGIN EC PRIVATE KEY-----\n" + "\n".join(PEM_LINES[:2]),
        PEM_LINES[:2],
        ("private-key",),
        "$ cat id_ecdsa\n[REDACTED:private-key]",
    ),
    SecretCase(
        "unified-diff",
        "diff --git a/app/settings.py b/app/settings.py\n"
        "index 3b18e51..a9c2f4d 100644\n"
        "--- a/app/settings.py\n"
        "+++ b/app/settings.py\n"
        "@@ -10,6 +10,7 @@ DEBUG = False\n"
        ' ALLOWED_HOSTS = ["*"]\n'
        '-GITHUB_TOKEN = os.environ["GITHUB_TOKEN"]\n'
        f'+GITHUB_TOKEN = "{GITHUB_PAT}"\n'
        f"+GITLAB_TOKEN = '{GITLAB_PAT}'\n",
        (GITHUB_PAT, GITLAB_PAT),
        ("github-pat", "gitlab-pat"),
        "diff --git a/app/settings.py b/app/settings.py\n"
        "index 3b18e51..a9c2f4d 100644\n"
        "--- a/app/settings.py\n"
        "+++ b/app/settings.py\n"
        "@@ -10,6 +10,7 @@ DEBUG = False\n"
        ' ALLOWED_HOSTS = ["*"]\n'
        '-GITHUB_TOKEN = os.environ["GITHUB_TOKEN"]\n'
        '+GITHUB_TOKEN = "[REDACTED:github-pat]"\n'
        "+GITLAB_TOKEN = '[REDACTED:gitlab-pat]'\n",
    ),
    SecretCase(
        "curl-bearer-jwt",
        f'curl -s -H "Authorization: Bearer {JWT}" https://api.example.com/v1/runs',
        (JWT,),
        ("jwt",),
        'curl -s -H "Authorization: Bearer [REDACTED:jwt]" https://api.example.com/v1/runs',
    ),
    SecretCase(
        "curl-bearer-opaque",
        f"curl -H 'Authorization: Bearer {OPAQUE}' https://api.example.com/v1/me",
        (OPAQUE,),
        ("authorization-header",),
        "curl -H 'Authorization: Bearer [REDACTED:authorization-header]' https://api.example.com/v1/me",
    ),
    SecretCase(
        "curl-user",
        f"curl -u deploy:{PASSWORD} https://registry.example.com/v2/_catalog",
        (PASSWORD,),
        ("curl-auth-user",),
        "curl -u deploy:[REDACTED:curl-auth-user] https://registry.example.com/v2/_catalog",
    ),
    SecretCase(
        "http-headers",
        "GET /v1/me HTTP/1.1\r\n"
        "Host: api.example.com\r\n"
        f"Authorization: Basic {BASIC}\r\n"
        f"X-Api-Key: {API_KEY}\r\n"
        "Accept: */*\r\n",
        (BASIC, API_KEY),
        ("authorization-header", "generic-api-key"),
    ),
    SecretCase(
        "postgres-url",
        f"psql postgres://report_user:{URL_PASSWORD}@db.prod.internal:5432/analytics -c 'select 1'",
        (URL_PASSWORD,),
        ("url-password",),
        "psql postgres://report_user:[REDACTED:url-password]@db.prod.internal:5432/analytics -c 'select 1'",
    ),
    SecretCase(
        "connection-urls",
        f"amqp://guest:{OTHER_PASSWORD}@rabbit:5672/\nredis://:{URL_PASSWORD}@cache:6379/0",
        (OTHER_PASSWORD, URL_PASSWORD),
        ("url-password", "url-password"),
    ),
    SecretCase(
        "jdbc-connection-string",
        f"jdbc:sqlserver://db:1433;databaseName=shop;user=sa;password={OTHER_PASSWORD};encrypt=true",
        (OTHER_PASSWORD,),
        ("keyword-password",),
    ),
    SecretCase(
        "mysql-command",
        f"mysql -h db -u root -p{OTHER_PASSWORD} shop < dump.sql",
        (OTHER_PASSWORD,),
        ("mysql-cli-password",),
    ),
    SecretCase(
        "docker-login",
        f"docker login --username bot --password {OTHER_PASSWORD} registry.example.com",
        (OTHER_PASSWORD,),
        ("cli-password-flag",),
    ),
    SecretCase(
        "python-clients",
        f'client = OpenAI(api_key="{OPENAI}")\nclaude = Anthropic(api_key="{ANTHROPIC}")\n',
        (OPENAI, ANTHROPIC),
        ("openai-api-key", "anthropic-api-key"),
    ),
    SecretCase(
        "npmrc",
        f"//registry.npmjs.org/:_authToken={NPM}\nalways-auth=true\n",
        (NPM,),
        ("npm-access-token",),
    ),
    SecretCase(
        "git-credential-url",
        f"git remote set-url origin https://x-access-token:{GITHUB_APP}@github.com/acme/app.git",
        (GITHUB_APP,),
        ("github-app-token",),
    ),
    SecretCase(
        "firebase-config",
        f'const firebaseConfig = {{ apiKey: "{GCP}", projectId: "demo-app" }};',
        (GCP,),
        ("gcp-api-key",),
    ),
)

CLEAN_CASES: tuple[tuple[str, str], ...] = (
    (
        "git-log",
        "4ec7749 preallocate bindings\n2cdb97d8e3c4e77a65d7a06981f84d51bf2d8dcf fix (#5224)",
    ),
    ("env-default", 'export DB_PASSWORD="${DB_PASSWORD:-}"'),
    ("command-substitution", "export GH_TOKEN=$(gh auth token)"),
    ("environ-lookup", 'api_key = os.environ["OPENAI_API_KEY"]'),
    ("function-call", 'token = get_token(scope="repo")'),
    ("helm-template", "password: {{ .Values.db.password }}"),
    ("actions-secret", "GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}"),
    ("placeholder", "OPENAI_API_KEY=YOUR_API_KEY"),
    ("placeholder-angle", "export ANTHROPIC_API_KEY=<your-api-key>"),
    ("aws-docs-example", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE"),
    ("aws-docs-secret", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    (
        "npm-integrity",
        '"integrity": "sha512-+VzxrHWkuvSSt0fw4I57SULo/NMrLnNgm6JHrkbIYfDw9jZJNTruCwkv32TCqSeC8xI'
        'XhYWMuxawwr/xOoHr8w==",',
    ),
    (
        "go-sum",
        "github.com/google/go-cmp v0.7.0 h1:wk8382ETsv4JYUZwIsn6YpYiWiBsYLSJiTsyBybVuN8=",
    ),
    ("uuid-id", 'request_id = "0736f5ef-7e88-499a-80cc-90c85d2a5180"'),
    (
        "pip-hash",
        "--hash=sha256:13b2beaad985e05e2d6407ee4c4f35590b11f8d693a258a561055cac8f64cab7 \\",
    ),
    (
        "prose",
        "The tokenizer splits text into tokens. Pass the secret's name, not its value, to the "
        "vault client; the key rotation job runs nightly and the password policy is enforced.",
    ),
    (
        "python-loop",
        "for key, value in sorted(config.items()):\n    if key == 'password':\n        continue\n    pass\n",
    ),
    ("curl-vars", 'curl -u "$USER:$PASS" https://example.com/api'),
    ("url-no-password", "psql postgres://localhost:5432/app && open https://example.com/?a=1&b=2"),
    ("url-placeholder", "mongodb://<user>:<password>@cluster0.example.net/test"),
    ("bearer-placeholder", "Authorization: Bearer <token>"),
    (
        "public-key",
        "-----BEGIN PUBLIC KEY-----\n" + "\n".join(PEM_LINES[:2]) + "\n-----END PUBLIC KEY-----",
    ),
    ("listing", "total 8\n-rw------- 1 agent agent 411 Jan  2 10:00 id_ed25519\n"),
    ("pytest-output", "tests/test_auth.py::test_token_refresh PASSED [ 50%]"),
)


# One sample per rule that the cases above do not exercise: rule id -> a text that holds a
# secret of that rule (cut in pieces so that a scanner does not report it).
RULE_SAMPLES: dict[str, str] = {
    "putty-private-key": (
        "PuTTY-User-K"
        + "ey-File-3: ssh-ed25519\\nEncryption: none\\nPrivate-Lines: 1\\n2xF2SF0N"
        + "NJFxTcGIWY8CY0OMlsEpfxrPxRyNJZK2GlJe\\nPrivate-MAC: d081a4e8d85dee7aa"
        + "6a1100fdc7632ef8aff280a3ea78dbbe74efe599f9d1cf3"
    ),
    "aws-bedrock-api-key": (
        "BEDROCK_KEY="
        + "ABSKpeV3D8s0O9V4cit7eoBjx7fwtv44bY9hB79pM233zCdI81Z1TOrwpcWUaat2V5fr"
        + "FiksYlHdLS6BDmMpFujvcSktkydZCsniqcEDWJHRxuudyaUd4DpEQTrB"
    ),
    "gcp-oauth-client-secret": '"client_secr' + 'et": "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"',
    "gcp-oauth-access-token": (
        "Authorizatio" + "n header value ya29.Od12-0D-Y4pozMLPBdH2NqM0NU3lg1RXJhwIQc-6JumhRN6z" + "lQjvlWO4OWCO"
    ),
    "azure-storage-account-key": (
        "DefaultEndpo"
        + "intsProtocol=https;AccountName=demo;AccountKey=J0WChb+4VEkLW794CJbpi"
        + "rXeOoASHpq8bqwsTbV0ZApRfHBguVy+3CNHMwmgZ7x6k5TiNfAqwUg7Bx34q9zDEg==;"
        + "EndpointSuffix=core.windows.net"
    ),
    "azure-shared-access-key": (
        "Endpoint=sb:"
        + "//demo.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccess"
        + "Key=7Mhm7cYZtMShQ/hmMzIaGKAOwQyVnntWAUKGXDzNR9s="
    ),
    "azure-sas-signature": (
        "https://demo"
        + ".blob.core.windows.net/c/f.txt?sv=2022-11-02&se=2025-01-01&sig=tgwjO"
        + "cpU0lFLfHy1DFpI7jm4gPYabGhTG64GGJOOOpo%3D"
    ),
    "alibaba-access-key-id": "LTAIOG0jn5UL" + "9RPszXh857ue",
    "digitalocean-token": (
        "DIGITALOCEAN" + "_TOKEN dop_v1_035a83379ee5a317142cb2a51b2ac9b1a13bab3de77480bb54b5d2" + "9720e2d3f9"
    ),
    "heroku-api-key-v2": "HRKU-AAQRZV8" + "KcMiSxdWxDCmimNlHdRvdjz83XGnxEJ5lPh60TmQwqUuQWSoDYtPp",
    "flyio-access-token": "FLY_API_TOKE" + "N fo1_j7-0bbSbcOM3pQYlmuen1C3MjmBQi-_UVuDcp7qPewj",
    "openshift-user-token": (
        "oc login --t"
        + "oken=sha256~rPxBZLQxajtwpDqOhrcOw3BRRr_zbQnT552zrjWPwwe --server=htt"
        + "ps://api.example.com:6443"
    ),
    "databricks-api-token": "dapi52d93f81" + "04fe7a055187d172f050f3e9",
    "scalingo-api-token": "tk-us-6H3wVw" + "awWOaFD6g0OIQSe-b5p7EHWsoIkYHaBJl-t8aWh4cF",
    "yandex-api-key": "AQVNf3NLXppB" + "y0CF3IO4FmL1oKuNhWz9nWn51_r1",
    "github-fine-grained-pat": (
        "github_pat_7" + "HEmKBTRNFfvSK1AItaH9z_s66i9whEHYBlemzAT7u6gCVlEsvAkf1QXjf6IoXeB1WIiv" + "Smx8qHKM3fdsn"
    ),
    "github-oauth": "gho_E20XwpE6" + "iYMHgTy4dXzhGf8EGv1k1I7hFxAh",
    "github-refresh-token": ("ghr_ISROmlJs" + "ZvRcGA3fg31SxJinH3OZAJmvdKCXtBUH3ab69Oggz9PGA46zGC4cwmxOiqBx9Hvl8h7z"),
    "gitlab-runner-token": "glrt-1adm5r4" + "t3OE-XGa8Oyei",
    "gitlab-token": "glptt-124a52" + "7bfef1415ea72dcfdb30f95e915c65de63",
    "gitlab-session-cookie": "Cookie: _git" + "lab_session=1if5zo07jjzin85cmdr47evbgdo2c20o",
    "atlassian-api-token": (
        "ATATT3YkUAS8"
        + "e-c856EbVMnxvGbBf=7mSS5NBk6SeFSCWlwcG2kvq-4mcOBgH6c8HIso7LfzeeZrGmO7"
        + "CrmuAyM=F_1tkB7yN6=VZxoPE5D25pq0wvi1u8RJy4gfQtuGf1iqw6FeWGPyIGrrK_SV"
        + "DOzO-LaBkf1N0tVXKkK75Jf2CHOQ6UcIbnh8QN2me"
    ),
    "pypi-upload-token": (
        "pypi-AgEIcHl" + "waS5vcmcvZl2Tfu3UaqrG4b_--mQnXnSxCZxwOLWurZq3CKezvEF1WEfZlj_zHnsMCpy" + "KOKQYn6nNd"
    ),
    "rubygems-api-token": "rubygems_0a1" + "68fc3c807369b50a2004c7459fb40327003f6a7e8e1ee",
    "clojars-api-token": ("CLOJARS_dnoj" + "sxwbn30huf0gq32tuis91fguuts0uqvlp197f20pf2w8yhwb5bbx09wa"),
    "docker-hub-pat": ("docker login" + " -u bot --password-stdin <<< dckr_pat_BWukAx-ZHIfglCLsM11zyfSgtey"),
    "artifactory-api-key": ("AKCpAYXmlWp6" + "AV3zqPEEk448S9ATKnokR7MTdJ8hz7aq6Pa0xl6h4VwHyz0vxv0L6KwdiC1SY"),
    "jfrog-identity-token": ("JFROG_TOKEN=" + "n0xeykjgw3k9c1srhcyxlpiocq8iceo5fi4s7hj6vaflg5co6pmkboyyvel4tbso"),
    "octopus-deploy-api-key": "API-LNOZBW4N" + "9I8EUUQ5FMWRSDT674",
    "sonar-token": "sqp_6da82f1f" + "d76d5c360c493b78980f78253ab3df81",
    "sourcegraph-access-token": "sgp_d5926524" + "2fb507767bd3fb5e88f753249c09eb35",
    "pulumi-api-token": "pul-dfb43fac" + "11ac70b8170f848510cbb4905c06ac57",
    "prefect-api-token": "pnu_zZcupFxT" + "z3p3YJ7VWogxyU7kw3Pama4WsZsZ",
    "terraform-cloud-token": (
        "JrmD9BwF2Vrt" + "3d.atlasv1.2tCo1RI6DejkbfT0trVQLaD3LZ0ozgu6jHIKfQHwx8XMa3UvNFuQ5rcQ7" + "20DvmB2KBo"
    ),
    "vault-token": (
        "X-Vault-Toke"
        + "n: hvs.WpGzOsvu1rGQmPsZGaZhujmFnwrtbYHxE-7d_QW73wvCgTn42np3FiA_nuzg8"
        + "hC7ve0QLBtmK9juYMVeZOsZD-t9RqcAWW9"
    ),
    "harness-api-key": ("pat.lyIyiwPt" + "X8SXkchDo6M1IS.HIebNAsSCpSXQIMhfL5T7QUT.BHlFvJRkUEMAC1G0n5AD"),
    "infracost-api-token": "INFRACOST_AP" + "I_KEY=ico-3jBDa1KDPWRrUBRLUu1QQNeCDTifQ4Z0",
    "doppler-api-token": "dp.st.prd.M8" + "XPUYcd11fJE7lXuCc099ivezdLAcX7dtuP3avKnNO",
    "1password-secret-key": "A3-SM7HEW-2G" + "Y0H83WSCS-U3NE2-QWKXG-82OIV",
    "1password-service-account-token": (
        "ops_eyJh1NjT"
        + "Yis1qebnxrsBXHzCHfto7F7DS6WkHlwebjyLtUXk+7V91M6wbd6dxqvpZgFJExVBOlbK"
        + "gsYtpc4OJxhcQ9AfrkvWP4keYXFLY3C3sFc7U0fljDC+84MJk2wI8tW0CWARoY3EaeVQ"
        + "W/AXVONBRw2MUjmwJEg6920/ADcm3sHgN/XDnf0W8ApaqCdISdO0PDZs6kfigr4nFdts"
        + "JiCZ/rk6GDHgxud64tAISnnCERBdDORLgZRHA/+R5FjTqG30OU5kAJhjL/cadVCpFMQ/"
        + "bGFrO5NCReFgrEqao+VqGi832f4ns42A0kKw+iulR3q"
    ),
    "age-secret-key": ("AGE-SECRET-K" + "EY-1QX35ATGUW2URT2R333J62CT2Q79JHHGD9XDARRKXLKL4NC2LK90NE9ETXC"),
    "sidekiq-secret": "BUNDLE_ENTER" + "PRISE__CONTRIBSYS__COM=8c23886b:58740ec7",
    "slack-user-token": ("xoxp-6791519" + "42608-271073357268-707521873584-696fde05a4d48d3f354e5dc5c48b1820"),
    "slack-legacy-token": "xoxs-2477567" + "19412-648561793986-028246426671-f8820ae4c7",
    "slack-config-token": (
        "xoxe.xoxp-1-"
        + "ruF0uN1UK8C0tvDThOjLrVL27uM0LzWszrs4ntDKWHBV1sIixQUm8U3On2CSZdYt5g8H"
        + "bHQL9A17cUpk8CHGD9JdUH7WPqRq0q0oJkq0tc5vjmuOvno4vo760coGC4Djbb2RbO6n"
        + "k2X1"
    ),
    "slack-app-token": (
        "xapp-1-A0TCV" + "RT8F9R-8203099825299-pnd88euk74sk3ockpt7oad6k3u3p6vrql5xgyb5viabcfe2" + "o1825zc8mkyepb36d"
    ),
    "slack-webhook-url": ("https://hook" + "s.slack.com/services/T53ZV4LGV/BYOA6JWA9/Ybr3XdWIkkVFapU2cPe46GZ2"),
    "discord-webhook-url": (
        "https://disc"
        + "ord.com/api/webhooks/064690257508515676/K3Gi7hKUpBHreOmwngjmkHBQrwXc"
        + "Y1sqzSg-KDVOQPKI7WuR9awbalYhcGDqaZrGsuQu"
    ),
    "microsoft-teams-webhook": (
        "https://acme"
        + ".webhook.office.com/webhookb2/60c1ea43-cf24-9098-5365-45ad534a2025@e"
        + "79c2902-a52b-4c77-652d-818c6b9532da/IncomingWebhook/17db1622c85744ac"
        + "4a33c1ce96b749f3/2aa019a7-b5bf"
    ),
    "telegram-bot-token": "bot388408819" + "6:AApU9P2RkNUw-UNCd1R9Y0tzL-XZ85sVkbk/sendMessage",
    "stripe-webhook-secret": "whsec_7X5XKx" + "p3v85b3Pj9ZjS8t7lIQLCPXzYe",
    "square-access-token": "sq0atp-7BDpN" + "vchNMI-6jQg4Lhcg9",
    "shopify-token": "shpat_4b2568" + "47c09a042100a7d1e6a378c25d",
    "flutterwave-key": "FLWSECK_TEST" + "-c8181ec5e4924e948876c6078b0f7e26-X",
    "easypost-api-token": "EZAKfYz2cgy0" + "uOtaz5WFsxV6qebN6wWk2Ny9o8A8MZRn1XUPbRKiUcjhRD",
    "shippo-api-token": "shippo_live_" + "f8b472677e044f216a19caf354126377fab4c288",
    "duffel-api-token": "duffel_live_" + "i-RCJkW8Nbb8NtI5-218LDA3qjECrLmkTZSLWaCv0Zr",
    "sendgrid-api-token": ("SG.U5H-YTeWY" + "8uj7FuDMbd5eP.Zm6HbiiugI2a2finhad00uO7OGi2-tS3QCGn4f9Z_nZ"),
    "sendinblue-api-token": (
        "xkeysib-4733" + "2f71e995f9ffbf665eea67e5a3ef9e16cd4f53049f0138e15a72bbcd4854-7MtJBEk" + "laYap60mC"
    ),
    "mailgun-api-key": "key-4a5adad6" + "dfc4ea7db43ef005b971f004",
    "mailchimp-api-key": "32d317e9e080" + "8b8faaeabf4f05bd6c1f-us14",
    "facebook-page-access-token": (
        "EAAB6T44c9AV"
        + "iGS8eagbdoLDEeqp3CLMxJVWLO1V6zLf2Dtvg06S421C4NjQjlyAwCvJzHdkAh2TCLoi"
        + "Q8vCtF9Omo3hyZwuBcPSdobpkgKA2JtKRx7sj2DjGRQsGQxYzlR7cdxsjGCjqR20yGOJ"
        + "8BJsxE"
    ),
    "twitter-bearer-token": (
        "AAAAAAAAAAAA"
        + "AAAAAAAAAAgBA4bkrNPZEwZQy9dwbom1ufs4DCDSNE9JxcWks3KYWCgIUJncI4KJD9Ig"
        + "SZN9Ub4kVmRIpr4XWycf4i7Twa7bU1ZE"
    ),
    "sentry-token": "sntryu_01a58" + "59256003236258184ec7fbc27fae91d16c2d1c33a05e4167e0af82f9688",
    "grafana-token": "glsa_0ZGI52u" + "3d1qkHOpMCNUrezE08t1uKgyT_b7845eee",
    "new-relic-key": "NRAK-37794KX" + "R02JP7LC61PHX8E5EHOW",
    "dynatrace-api-token": (
        "dt0c01.KPKP1" + "QGE8T5ZHC34B3CGBZYX.3L5DTWFX5GTEOS8DS5UAQB2VL8Y25IJTYJSZ3J2Z6AF48B3X" + "3JBTZTYWXSJK8R6D"
    ),
    "sumologic-access-id": "SUMO_ACCESS_" + "ID=suednpEZKo8YBj",
    "postman-api-token": "PMAK-f31ad97" + "037bc15532257c720-48b363992cab8b37d240d73c47fb99e563",
    "linear-api-key": "lin_api_nyb0" + "MRDglzTASECMoYDm3ZfPYyuCbYhOHk6JXzzy",
    "notion-api-token": "ntn_nujYVNWJ" + "f5PztVm7SvAVqVc1kgamzabfFiG4hQ81OCQT7B",
    "readme-api-token": ("rdme_88mj86l" + "alg10o5vykonwnix9zyrl032yhgnul24yb8e0fkb3c3tto0r73cga2w3kmllem2"),
    "typeform-api-token": "tfp_9Gylgvh6" + "GbUZUg4vIRd4x7Nhjl278YIu1UZODGQsp1bkCaozO8MMCjFzqPn",
    "frameio-api-token": ("fio-u-iU0RdM" + "0_yd3VeOOeMTKcQf-pPWnrdvCWsbn4PSCYCsm8xPbSZsflFRqjH95E7BZ9"),
    "mapbox-secret-token": (
        "sk.eyJXBnodz" + "h8WinIQnlIFMgXCTwhGkjarUJISwxZX5izesX1ZrjiurtqDtWU4nPu.egWgi37gQsF0j" + "-pna17Lwe"
    ),
    "planetscale-token": "pscale_tkn_I" + "dsCw_WMb2j77N93Z1FRgF8bzuBOz_csbrP5Q_V748P",
    "settlemint-token": "sm_pat_4J3Z" + "BnK08a19HK7p",
    "adobe-client-secret": "p8e-oEchroAX" + "sMADjlQtOxRDbHdQm7dW1gep",
    "intra42-client-secret": ("s-s4t2ud-374" + "b604d0e7bf5e80773819015577ac6d251e38bf07a5344a2e1d895796b24e4"),
    "huggingface-organization-api-token": "api_org_KVKa" + "dwhSkfzMEKAHUqGdtleudtyWgtqzhD",
    "perplexity-api-key": "pplx-jGYEbTN" + "I4JPniWjNBHvnuvNm4fUZsOSOtz0XsUvIhugKte8s",
    "groq-api-key": "GROQ_API_KEY" + "=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",
    "xai-api-key": ("xai-quxjpXXW" + "ROBQh4bl7PZBPyiNJuevUxfUVAPJ0SJgCI7KMIu1fvK306WvccPHeklRzP7YoeSx8VBK" + "PDEg"),
    "replicate-api-token": "r8_AYbMNIoLb" + "s9efPJtCGc3JEKR5QA8zgGfIRFhJ",
    "bearer-token": "headers = {'" + "X-Auth': 'Bearer m1YpALHXStxPVoVAyFMucSgbxxxfDcOwHOAQ84jh'}",
    "cli-password-flag": "wget --passw" + "ord=jHMiNY5nS4VUod https://example.com/f",
    "generic-token": '"refresh_tok' + 'en": "Cq3rlG0I2kgFp0fRvJ7arWGXa97RykXcfbmHr0gqnpXJI0Dw"',
    "generic-secret": "my_secret_va" + "lue_b64 = ofxnTKu0IlQy7uzyCefVx44lK8aYVoz73bvwsjpu",
    "azure-ad-client-secret": "AZURE_CLIENT" + "_SECRET=Hx38Q~DJqo6qMwhQzwT8WvGyHOs85ypu_ILde2Rf",
}
