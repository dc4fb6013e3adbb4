"""Storage: the attachments (and exports, and archive) bucket.

Private by construction (every public-access block on, ACLs disabled), reachable only over TLS
1.2+, encrypted with the stack's key by default (S3 Bucket Keys keep the KMS calls few),
versioned (the adapter deletes every version of a task's prefix), and kept tidy by lifecycle
rules. Browsers upload with presigned POSTs straight to S3, so CORS allows the stack's origins.

The archive of completed tasks (`archive/`, docs/archive.md) moves to the stack's colder class
(`archiveColdStorageClass`) `archiveColdAfterDays` after each object's last write, and is
never expired. The bucket's policy refuses any write under it that does not ask for SSE-KMS
with the stack's key, whatever the bucket's default encryption may become.
"""

from __future__ import annotations

import attrs
import pulumi
import pulumi_aws as aws

from infra.context import Deployment, policy
from infra.wiring import ARCHIVE_PREFIX

NONCURRENT_VERSION_DAYS = 30
ABORT_MULTIPART_DAYS = 1
MIN_TLS_VERSION = "1.2"
CORS_MAX_AGE_S = 600


@attrs.frozen
class StorageArgs:
    deployment: Deployment
    key_arn: pulumi.Input[str]


class Storage(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    name: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tasks:storage:Storage", name, None, opts)
        config = args.deployment.config
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(
            f"{name}-attachments",
            force_destroy=not config.deletion_protection,
            opts=args.deployment.stateful(self),
        )
        bucket = self.bucket.id
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        private = aws.s3.BucketPublicAccessBlock(
            f"{name}-private",
            bucket=bucket,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=args.key_arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-multipart-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=ABORT_MULTIPART_DAYS
                    ),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-noncurrent-versions",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=NONCURRENT_VERSION_DAYS
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        expired_object_delete_marker=True
                    ),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="archive-to-colder-storage",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=ARCHIVE_PREFIX),
                    transitions=[
                        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                            days=config.archive_cold_after_days,
                            storage_class=config.archive_cold_storage_class,
                        )
                    ],
                ),
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )
        aws.s3.BucketCorsConfiguration(
            f"{name}-cors",
            bucket=bucket,
            cors_rules=[
                aws.s3.BucketCorsConfigurationCorsRuleArgs(
                    allowed_methods=["GET", "POST"],
                    allowed_origins=list(config.cors_allow_origins),
                    allowed_headers=["content-type"],
                    expose_headers=["etag"],
                    max_age_seconds=CORS_MAX_AGE_S,
                )
            ],
            opts=child,
        )
        arn = self.bucket.arn
        objects = pulumi.Output.concat(arn, "/*")
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket,
            policy=policy(
                [
                    {
                        "Sid": "DenyPlainHttp",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [arn, objects],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    {
                        "Sid": "DenyOutdatedTls",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [arn, objects],
                        "Condition": {"NumericLessThan": {"s3:TlsVersion": MIN_TLS_VERSION}},
                    },
                    {
                        # A request without the header is refused too: a negated condition
                        # holds when its key is absent.
                        "Sid": "DenyArchiveWritesWithoutTheStackKey",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:PutObject",
                        "Resource": pulumi.Output.concat(arn, "/", ARCHIVE_PREFIX, "*"),
                        "Condition": {
                            "StringNotEquals": {
                                "s3:x-amz-server-side-encryption-aws-kms-key-id": args.key_arn
                            }
                        },
                    },
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[private]),
        )
        self.name = self.bucket.bucket
        self.arn = arn
        self.register_outputs({"name": self.name, "arn": self.arn})
