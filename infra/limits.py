"""What AWS refuses, for every input the program sends it: one table from a Pulumi type and
input property to the AWS API operation and member that receives it, and the constraints of
that member read from botocore's service models (`min`, `max`, `pattern`, `enum`), never typed
here.

Three things are written by hand, each tied to its source:
- where a member's model holds no machine-readable limit but its documentation states one,
  a `Documented` limit quotes that sentence, and `documented_sentences_hold()` checks the
  sentence is still in botocore's documentation of that member (S3's bucket names, whose
  rules the model only links to, cite the S3 User Guide);
- API Gateway v2's model names its string shapes after their limits
  (`StringWithLengthBetween1And128`) without stating them: the name is read;
- `AUTONAMED`, the properties pulumi-aws fills in itself when the program leaves them out,
  with the provider's maximum (pulumi-aws `provider/resources.go`; every other input named
  `name` gets its default of 255, `provider/autonaming.go`).

`RULES` are the refusals no member's shape states, each quoted from AWS's documentation with
its source: SnapStart's runtimes and what it cannot be combined with, provisioned concurrency
only on a published version and within the function's reservation, a function URL only on an
alias (or `$LATEST`). Some span two resources (a function and its provisioned-concurrency
config, a function URL and the alias it names); they are checked against the resources
registered before, whichever of the two comes second.

`violations(type, inputs, registered)` is what the mocks (`infra/mocks.py`) refuse a
registration with, and, with no `registered` (one resource at a time), what the policy pack
(`policy/`) reports at `pulumi preview`. A resource type that is not in `LIMITS` is itself a
violation, so a new type cannot slip past unchecked.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import botocore.model
import botocore.session
import regex

from stack import schedules
from stack.config import LAMBDA_ENVIRONMENT_MAX_BYTES, environment_size


@attrs.frozen
class Documented:
    """A limit stated in prose: `says` is quoted from the member's documentation in botocore's
    model (or from `source`, a URL, where the model only links to the rules)."""

    says: str
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    source: str = "botocore"


@attrs.frozen
class Api:
    """The member of an AWS API operation's input that receives a property: `path` walks the
    input shape, `[]` stepping into a list's members. `shape` names the model's shape to check
    instead, where the member takes a name or an ARN and the name's own shape is narrower."""

    service: str
    operation: str
    path: str
    documented: Documented | None = None
    shape: str | None = None


@attrs.frozen
class Unchecked:
    """A property no name or enum rule applies to, and why."""

    reason: str


REFERENCE = Unchecked("another resource's id, name or ARN: checked where that resource is made")
DOCUMENT = Unchecked("a JSON document: its content is checked by the policy rules")
NOT_AWS = Unchecked("not sent to AWS")


@attrs.frozen
class AutoName:
    """A property pulumi-aws fills in when it is left out: `<logical name>-<7 hex>`, at most
    `max_length` characters (longer refuses the preview), lower-cased where `lower`."""

    property: str
    max_length: int
    lower: bool = False


RANDOM_HEX = 7  # pulumi-terraform-bridge's random suffix, after a "-"

# pulumi-aws's auto-named properties other than `name` (255), and its narrower maximums
# (`provider/resource_overrides.go`; pulumi-terraform-bridge's `AutoName` refuses rather than
# truncates a name that does not fit with its suffix).
AUTONAMED: Mapping[str, AutoName] = {
    "aws:cloudwatch/eventRule:EventRule": AutoName("name", 64),
    "aws:cloudwatch/eventTarget:EventTarget": AutoName("targetId", 255),
    "aws:iam/role:Role": AutoName("name", 64),
    "aws:kms/alias:Alias": AutoName("name", 238),
    "aws:lambda/function:Function": AutoName("name", 64),
    "aws:lambda/permission:Permission": AutoName("statementId", 100),
    "aws:s3/bucket:Bucket": AutoName("bucket", 63, lower=True),
    "aws:sns/topic:Topic": AutoName("name", 80),
    "aws:sqs/queue:Queue": AutoName("name", 80),
}
DEFAULT_AUTONAME_MAX = 255

_APIGW = "apigatewayv2"
_LAMBDA_NAME = Documented(
    "If you specify only the function name, it is limited to 64 characters in length.",
    max_length=64,
    pattern=r"[a-zA-Z0-9-_]+",
)


def _tags(service: str, operation: str, member: str) -> Api:
    return Api(service, operation, member)


LIMITS: Mapping[str, Mapping[str, Api | Unchecked]] = {
    "aws:apigatewayv2/api:Api": {
        "name": Api(_APIGW, "CreateApi", "Name"),
        "protocolType": Api(_APIGW, "CreateApi", "ProtocolType"),
        "corsConfiguration.allowHeaders[]": Api(
            _APIGW, "CreateApi", "CorsConfiguration.AllowHeaders[]"
        ),
        "corsConfiguration.allowMethods[]": Api(
            _APIGW, "CreateApi", "CorsConfiguration.AllowMethods[]"
        ),
        "corsConfiguration.allowOrigins[]": Api(
            _APIGW, "CreateApi", "CorsConfiguration.AllowOrigins[]"
        ),
        "corsConfiguration.exposeHeaders[]": Api(
            _APIGW, "CreateApi", "CorsConfiguration.ExposeHeaders[]"
        ),
        "corsConfiguration.maxAge": Api(_APIGW, "CreateApi", "CorsConfiguration.MaxAge"),
        "tags": _tags(_APIGW, "CreateApi", "Tags"),
    },
    "aws:apigatewayv2/apiMapping:ApiMapping": {
        "apiId": REFERENCE,
        "domainName": Api(_APIGW, "CreateApiMapping", "DomainName"),
        "stage": Api(_APIGW, "CreateApiMapping", "Stage"),
    },
    "aws:apigatewayv2/authorizer:Authorizer": {
        "apiId": REFERENCE,
        "name": Api(_APIGW, "CreateAuthorizer", "Name"),
        "authorizerType": Api(_APIGW, "CreateAuthorizer", "AuthorizerType"),
        "identitySources[]": Api(_APIGW, "CreateAuthorizer", "IdentitySource[]"),
        "jwtConfiguration.audiences[]": Api(
            _APIGW, "CreateAuthorizer", "JwtConfiguration.Audience[]"
        ),
        "jwtConfiguration.issuer": Api(_APIGW, "CreateAuthorizer", "JwtConfiguration.Issuer"),
    },
    "aws:apigatewayv2/domainName:DomainName": {
        "domainName": Api(_APIGW, "CreateDomainName", "DomainName"),
        "domainNameConfiguration.certificateArn": REFERENCE,
        "domainNameConfiguration.endpointType": Api(
            _APIGW, "CreateDomainName", "DomainNameConfigurations[].EndpointType"
        ),
        "domainNameConfiguration.securityPolicy": Api(
            _APIGW, "CreateDomainName", "DomainNameConfigurations[].SecurityPolicy"
        ),
        "tags": _tags(_APIGW, "CreateDomainName", "Tags"),
    },
    "aws:apigatewayv2/integration:Integration": {
        "apiId": REFERENCE,
        "integrationUri": REFERENCE,
        "integrationType": Api(_APIGW, "CreateIntegration", "IntegrationType"),
        "payloadFormatVersion": Api(_APIGW, "CreateIntegration", "PayloadFormatVersion"),
    },
    "aws:apigatewayv2/route:Route": {
        "apiId": REFERENCE,
        "authorizerId": REFERENCE,
        "target": REFERENCE,
        "routeKey": Api(_APIGW, "CreateRoute", "RouteKey"),
        "authorizationType": Api(_APIGW, "CreateRoute", "AuthorizationType"),
    },
    "aws:apigatewayv2/stage:Stage": {
        "apiId": REFERENCE,
        "accessLogSettings.destinationArn": REFERENCE,
        "name": Api(_APIGW, "CreateStage", "StageName"),
        "accessLogSettings.format": Api(_APIGW, "CreateStage", "AccessLogSettings.Format"),
        "tags": _tags(_APIGW, "CreateStage", "Tags"),
    },
    "aws:cloudwatch/dashboard:Dashboard": {
        "dashboardBody": DOCUMENT,
        "dashboardName": Api(
            "cloudwatch",
            "PutDashboard",
            "DashboardName",
            Documented(
                'The maximum length is 255, and valid characters are A-Z, a-z, 0-9, "-", and "_".',
                min_length=1,
                max_length=255,
                pattern=r"[A-Za-z0-9_-]+",
            ),
        ),
    },
    "aws:cloudwatch/eventBus:EventBus": {
        "name": Api("events", "CreateEventBus", "Name"),
        "description": Api("events", "CreateEventBus", "Description"),
        "tags": _tags("events", "CreateEventBus", "Tags"),
    },
    "aws:cloudwatch/eventRule:EventRule": {
        "name": Api("events", "PutRule", "Name"),
        "description": Api("events", "PutRule", "Description"),
        "eventBusName": Api("events", "PutRule", "EventBusName"),
        "eventPattern": Api("events", "PutRule", "EventPattern"),
        # Its length here; its syntax in `RULES` (the model states none).
        "scheduleExpression": Api("events", "PutRule", "ScheduleExpression"),
        "tags": _tags("events", "PutRule", "Tags"),
    },
    "aws:cloudwatch/eventTarget:EventTarget": {
        "arn": REFERENCE,
        "roleArn": REFERENCE,
        "deadLetterConfig.arn": REFERENCE,
        "targetId": Api("events", "PutTargets", "Targets[].Id"),
        "rule": Api("events", "PutTargets", "Rule"),
        "eventBusName": Api("events", "PutTargets", "EventBusName"),
        "retryPolicy.maximumRetryAttempts": Api(
            "events", "PutTargets", "Targets[].RetryPolicy.MaximumRetryAttempts"
        ),
        "retryPolicy.maximumEventAgeInSeconds": Api(
            "events", "PutTargets", "Targets[].RetryPolicy.MaximumEventAgeInSeconds"
        ),
    },
    "aws:cloudwatch/logGroup:LogGroup": {
        "kmsKeyId": REFERENCE,
        "name": Api("logs", "CreateLogGroup", "logGroupName"),
        "tags": _tags("logs", "CreateLogGroup", "tags"),
    },
    "aws:cloudwatch/metricAlarm:MetricAlarm": {
        "alarmActions[]": REFERENCE,
        "okActions[]": REFERENCE,
        "name": Api("cloudwatch", "PutMetricAlarm", "AlarmName"),
        "alarmDescription": Api("cloudwatch", "PutMetricAlarm", "AlarmDescription"),
        "comparisonOperator": Api("cloudwatch", "PutMetricAlarm", "ComparisonOperator"),
        "statistic": Api("cloudwatch", "PutMetricAlarm", "Statistic"),
        "extendedStatistic": Api("cloudwatch", "PutMetricAlarm", "ExtendedStatistic"),
        "metricName": Api("cloudwatch", "PutMetricAlarm", "MetricName"),
        "namespace": Api("cloudwatch", "PutMetricAlarm", "Namespace"),
        "treatMissingData": Api("cloudwatch", "PutMetricAlarm", "TreatMissingData"),
        "dimensions": Api("cloudwatch", "PutMetricAlarm", "Dimensions"),
        "period": Api("cloudwatch", "PutMetricAlarm", "Period"),
        "evaluationPeriods": Api("cloudwatch", "PutMetricAlarm", "EvaluationPeriods"),
        "datapointsToAlarm": Api("cloudwatch", "PutMetricAlarm", "DatapointsToAlarm"),
        "metricQueries[].id": Api("cloudwatch", "PutMetricAlarm", "Metrics[].Id"),
        "metricQueries[].expression": Api("cloudwatch", "PutMetricAlarm", "Metrics[].Expression"),
        "metricQueries[].label": Api("cloudwatch", "PutMetricAlarm", "Metrics[].Label"),
        "metricQueries[].metric.metricName": Api(
            "cloudwatch", "PutMetricAlarm", "Metrics[].MetricStat.Metric.MetricName"
        ),
        "metricQueries[].metric.namespace": Api(
            "cloudwatch", "PutMetricAlarm", "Metrics[].MetricStat.Metric.Namespace"
        ),
        "metricQueries[].metric.dimensions": Api(
            "cloudwatch", "PutMetricAlarm", "Metrics[].MetricStat.Metric.Dimensions"
        ),
        "metricQueries[].metric.stat": Api(
            "cloudwatch", "PutMetricAlarm", "Metrics[].MetricStat.Stat"
        ),
        "metricQueries[].metric.period": Api(
            "cloudwatch", "PutMetricAlarm", "Metrics[].MetricStat.Period"
        ),
        "tags": _tags("cloudwatch", "PutMetricAlarm", "Tags"),
    },
    "aws:cognito/userGroup:UserGroup": {
        "userPoolId": REFERENCE,
        "name": Api("cognito-idp", "CreateGroup", "GroupName"),
        "description": Api("cognito-idp", "CreateGroup", "Description"),
    },
    "aws:cognito/userPool:UserPool": {
        "name": Api("cognito-idp", "CreateUserPool", "PoolName"),
        "mfaConfiguration": Api("cognito-idp", "SetUserPoolMfaConfig", "MfaConfiguration"),
        "deletionProtection": Api("cognito-idp", "CreateUserPool", "DeletionProtection"),
        "usernameAttributes[]": Api("cognito-idp", "CreateUserPool", "UsernameAttributes[]"),
        "autoVerifiedAttributes[]": Api(
            "cognito-idp", "CreateUserPool", "AutoVerifiedAttributes[]"
        ),
        "accountRecoverySetting.recoveryMechanisms[].name": Api(
            "cognito-idp", "CreateUserPool", "AccountRecoverySetting.RecoveryMechanisms[].Name"
        ),
        "accountRecoverySetting.recoveryMechanisms[].priority": Api(
            "cognito-idp", "CreateUserPool", "AccountRecoverySetting.RecoveryMechanisms[].Priority"
        ),
        "passwordPolicy.minimumLength": Api(
            "cognito-idp", "CreateUserPool", "Policies.PasswordPolicy.MinimumLength"
        ),
        "passwordPolicy.temporaryPasswordValidityDays": Api(
            "cognito-idp",
            "CreateUserPool",
            "Policies.PasswordPolicy.TemporaryPasswordValidityDays",
        ),
        "tags": _tags("cognito-idp", "CreateUserPool", "UserPoolTags"),
    },
    "aws:cognito/userPoolClient:UserPoolClient": {
        "userPoolId": REFERENCE,
        "name": Api("cognito-idp", "CreateUserPoolClient", "ClientName"),
        "explicitAuthFlows[]": Api("cognito-idp", "CreateUserPoolClient", "ExplicitAuthFlows[]"),
        "preventUserExistenceErrors": Api(
            "cognito-idp", "CreateUserPoolClient", "PreventUserExistenceErrors"
        ),
        "tokenValidityUnits.accessToken": Api(
            "cognito-idp", "CreateUserPoolClient", "TokenValidityUnits.AccessToken"
        ),
        "tokenValidityUnits.idToken": Api(
            "cognito-idp", "CreateUserPoolClient", "TokenValidityUnits.IdToken"
        ),
        "tokenValidityUnits.refreshToken": Api(
            "cognito-idp", "CreateUserPoolClient", "TokenValidityUnits.RefreshToken"
        ),
        "accessTokenValidity": Api("cognito-idp", "CreateUserPoolClient", "AccessTokenValidity"),
        "idTokenValidity": Api("cognito-idp", "CreateUserPoolClient", "IdTokenValidity"),
        "refreshTokenValidity": Api("cognito-idp", "CreateUserPoolClient", "RefreshTokenValidity"),
    },
    "aws:dynamodb/table:Table": {
        "serverSideEncryption.kmsKeyArn": REFERENCE,
        # CreateTable takes a name or an ARN; as a name it is the model's `TableName` shape.
        "name": Api("dynamodb", "CreateTable", "TableName", shape="TableName"),
        "billingMode": Api("dynamodb", "CreateTable", "BillingMode"),
        "attributes[].name": Api("dynamodb", "CreateTable", "AttributeDefinitions[].AttributeName"),
        "attributes[].type": Api("dynamodb", "CreateTable", "AttributeDefinitions[].AttributeType"),
        "hashKey": Api("dynamodb", "CreateTable", "KeySchema[].AttributeName"),
        "rangeKey": Api("dynamodb", "CreateTable", "KeySchema[].AttributeName"),
        "globalSecondaryIndexes[].name": Api(
            "dynamodb", "CreateTable", "GlobalSecondaryIndexes[].IndexName"
        ),
        "globalSecondaryIndexes[].keySchemas[].attributeName": Api(
            "dynamodb", "CreateTable", "GlobalSecondaryIndexes[].KeySchema[].AttributeName"
        ),
        "globalSecondaryIndexes[].keySchemas[].keyType": Api(
            "dynamodb", "CreateTable", "GlobalSecondaryIndexes[].KeySchema[].KeyType"
        ),
        "globalSecondaryIndexes[].projectionType": Api(
            "dynamodb", "CreateTable", "GlobalSecondaryIndexes[].Projection.ProjectionType"
        ),
        "localSecondaryIndexes[].name": Api(
            "dynamodb", "CreateTable", "LocalSecondaryIndexes[].IndexName"
        ),
        "localSecondaryIndexes[].rangeKey": Api(
            "dynamodb", "CreateTable", "LocalSecondaryIndexes[].KeySchema[].AttributeName"
        ),
        "localSecondaryIndexes[].projectionType": Api(
            "dynamodb", "CreateTable", "LocalSecondaryIndexes[].Projection.ProjectionType"
        ),
        "streamViewType": Api("dynamodb", "CreateTable", "StreamSpecification.StreamViewType"),
        "ttl.attributeName": Api(
            "dynamodb", "UpdateTimeToLive", "TimeToLiveSpecification.AttributeName"
        ),
        "tags": _tags("dynamodb", "CreateTable", "Tags"),
    },
    "aws:iam/role:Role": {
        "name": Api("iam", "CreateRole", "RoleName"),
        "description": Api("iam", "CreateRole", "Description"),
        "assumeRolePolicy": Api("iam", "CreateRole", "AssumeRolePolicyDocument"),
        "maxSessionDuration": Api("iam", "CreateRole", "MaxSessionDuration"),
        "tags": _tags("iam", "CreateRole", "Tags"),
    },
    "aws:iam/rolePolicy:RolePolicy": {
        "name": Api("iam", "PutRolePolicy", "PolicyName"),
        "role": Api("iam", "PutRolePolicy", "RoleName"),
        "policy": Api("iam", "PutRolePolicy", "PolicyDocument"),
    },
    "aws:kms/alias:Alias": {
        "targetKeyId": REFERENCE,
        "name": Api("kms", "CreateAlias", "AliasName"),
    },
    "aws:kms/key:Key": {
        "description": Api("kms", "CreateKey", "Description"),
        "policy": Api("kms", "CreateKey", "Policy"),
        "deletionWindowInDays": Api("kms", "ScheduleKeyDeletion", "PendingWindowInDays"),
        "tags": _tags("kms", "CreateKey", "Tags"),
    },
    "aws:lambda/alias:Alias": {
        "functionName": Api("lambda", "CreateAlias", "FunctionName", _LAMBDA_NAME),
        "functionVersion": Api("lambda", "CreateAlias", "FunctionVersion"),
        "name": Api("lambda", "CreateAlias", "Name"),
        "description": Api("lambda", "CreateAlias", "Description"),
    },
    "aws:lambda/eventSourceMapping:EventSourceMapping": {
        "functionName": REFERENCE,
        "eventSourceArn": REFERENCE,
        "destinationConfig.onFailure.destinationArn": REFERENCE,
        "functionResponseTypes[]": Api(
            "lambda", "CreateEventSourceMapping", "FunctionResponseTypes[]"
        ),
        "startingPosition": Api("lambda", "CreateEventSourceMapping", "StartingPosition"),
        "batchSize": Api("lambda", "CreateEventSourceMapping", "BatchSize"),
        "maximumBatchingWindowInSeconds": Api(
            "lambda", "CreateEventSourceMapping", "MaximumBatchingWindowInSeconds"
        ),
        "maximumRetryAttempts": Api("lambda", "CreateEventSourceMapping", "MaximumRetryAttempts"),
        "maximumRecordAgeInSeconds": Api(
            "lambda", "CreateEventSourceMapping", "MaximumRecordAgeInSeconds"
        ),
        # Each filter's pattern: at most 4,096 characters (the model's `Pattern` shape); how
        # many filters a mapping may have, the model does not say: `RULES` (the Lambda guide).
        "filterCriteria.filters[].pattern": Api(
            "lambda", "CreateEventSourceMapping", "FilterCriteria.Filters[].Pattern"
        ),
        "tags": _tags("lambda", "CreateEventSourceMapping", "Tags"),
    },
    "aws:lambda/function:Function": {
        "kmsKeyArn": REFERENCE,
        # Our dependency layer's ARN, and the Web Adapter's, which the program writes itself.
        "layers[]": Api("lambda", "CreateFunction", "Layers[]"),
        "role": REFERENCE,
        "name": Api("lambda", "CreateFunction", "FunctionName", _LAMBDA_NAME),
        "description": Api("lambda", "CreateFunction", "Description"),
        "handler": Api("lambda", "CreateFunction", "Handler"),
        "runtime": Api("lambda", "CreateFunction", "Runtime"),
        "architectures[]": Api("lambda", "CreateFunction", "Architectures[]"),
        "memorySize": Api("lambda", "CreateFunction", "MemorySize"),
        "timeout": Api("lambda", "CreateFunction", "Timeout"),
        "environment.variables": Api("lambda", "CreateFunction", "Environment.Variables"),
        "tracingConfig.mode": Api("lambda", "CreateFunction", "TracingConfig.Mode"),
        "loggingConfig.logFormat": Api("lambda", "CreateFunction", "LoggingConfig.LogFormat"),
        "loggingConfig.logGroup": Api("lambda", "CreateFunction", "LoggingConfig.LogGroup"),
        "loggingConfig.applicationLogLevel": Api(
            "lambda", "CreateFunction", "LoggingConfig.ApplicationLogLevel"
        ),
        "loggingConfig.systemLogLevel": Api(
            "lambda", "CreateFunction", "LoggingConfig.SystemLogLevel"
        ),
        "reservedConcurrentExecutions": Api(
            "lambda", "PutFunctionConcurrency", "ReservedConcurrentExecutions"
        ),
        "publish": Api("lambda", "CreateFunction", "Publish"),
        "snapStart.applyOn": Api("lambda", "CreateFunction", "SnapStart.ApplyOn"),
        "ephemeralStorage.size": Api("lambda", "CreateFunction", "EphemeralStorage.Size"),
        "tags": _tags("lambda", "CreateFunction", "Tags"),
    },
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": {
        "destinationConfig.onFailure.destination": REFERENCE,
        "functionName": Api("lambda", "PutFunctionEventInvokeConfig", "FunctionName", _LAMBDA_NAME),
        "qualifier": Api("lambda", "PutFunctionEventInvokeConfig", "Qualifier"),
        "maximumRetryAttempts": Api(
            "lambda", "PutFunctionEventInvokeConfig", "MaximumRetryAttempts"
        ),
        "maximumEventAgeInSeconds": Api(
            "lambda", "PutFunctionEventInvokeConfig", "MaximumEventAgeInSeconds"
        ),
    },
    "aws:lambda/functionUrl:FunctionUrl": {
        "functionName": Api("lambda", "CreateFunctionUrlConfig", "FunctionName", _LAMBDA_NAME),
        # An alias name: the model's pattern refuses a version number (and `$LATEST`, which is
        # a URL without a qualifier); `RULES` refuse a name that is not one of its aliases.
        "qualifier": Api("lambda", "CreateFunctionUrlConfig", "Qualifier"),
        "authorizationType": Api("lambda", "CreateFunctionUrlConfig", "AuthType"),
        "invokeMode": Api("lambda", "CreateFunctionUrlConfig", "InvokeMode"),
        # Lists whole: their number of items (at most 100 origins, 6 methods...) and each item.
        "cors.allowOrigins": Api("lambda", "CreateFunctionUrlConfig", "Cors.AllowOrigins"),
        "cors.allowMethods": Api("lambda", "CreateFunctionUrlConfig", "Cors.AllowMethods"),
        "cors.allowHeaders": Api("lambda", "CreateFunctionUrlConfig", "Cors.AllowHeaders"),
        "cors.exposeHeaders": Api("lambda", "CreateFunctionUrlConfig", "Cors.ExposeHeaders"),
        "cors.maxAge": Api("lambda", "CreateFunctionUrlConfig", "Cors.MaxAge"),
        "cors.allowCredentials": Api("lambda", "CreateFunctionUrlConfig", "Cors.AllowCredentials"),
    },
    "aws:lambda/layerVersion:LayerVersion": {
        "layerName": Api("lambda", "PublishLayerVersion", "LayerName"),
        "description": Api("lambda", "PublishLayerVersion", "Description"),
        "compatibleRuntimes[]": Api("lambda", "PublishLayerVersion", "CompatibleRuntimes[]"),
        "compatibleArchitectures[]": Api(
            "lambda", "PublishLayerVersion", "CompatibleArchitectures[]"
        ),
    },
    "aws:lambda/permission:Permission": {
        "statementId": Api("lambda", "AddPermission", "StatementId"),
        "action": Api("lambda", "AddPermission", "Action"),
        "function": Api("lambda", "AddPermission", "FunctionName", _LAMBDA_NAME),
        "qualifier": Api("lambda", "AddPermission", "Qualifier"),
        "principal": Api("lambda", "AddPermission", "Principal"),
        "sourceArn": Api("lambda", "AddPermission", "SourceArn"),
        "functionUrlAuthType": Api("lambda", "AddPermission", "FunctionUrlAuthType"),
        "invokedViaFunctionUrl": Api("lambda", "AddPermission", "InvokedViaFunctionUrl"),
    },
    "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": {
        "functionName": Api(
            "lambda", "PutProvisionedConcurrencyConfig", "FunctionName", _LAMBDA_NAME
        ),
        "qualifier": Api("lambda", "PutProvisionedConcurrencyConfig", "Qualifier"),
        "provisionedConcurrentExecutions": Api(
            "lambda", "PutProvisionedConcurrencyConfig", "ProvisionedConcurrentExecutions"
        ),
    },
    "aws:secretsmanager/secret:Secret": {
        "kmsKeyId": REFERENCE,
        "name": Api("secretsmanager", "CreateSecret", "Name"),
        "description": Api("secretsmanager", "CreateSecret", "Description"),
        "recoveryWindowInDays": Api(
            "secretsmanager",
            "DeleteSecret",
            "RecoveryWindowInDays",
            Documented(
                "The number of days from 7 to 30 that Secrets Manager waits before permanently "
                "deleting the secret.",
                minimum=7,
                maximum=30,
            ),
        ),
        "tags": _tags("secretsmanager", "CreateSecret", "Tags"),
    },
    "aws:secretsmanager/secretVersion:SecretVersion": {
        "secretId": REFERENCE,
        "secretString": Api("secretsmanager", "PutSecretValue", "SecretString"),
    },
    "aws:s3/bucket:Bucket": {
        "bucket": Api(
            "s3",
            "CreateBucket",
            "Bucket",
            Documented(
                "Bucket names must be between 3 (min) and 63 (max) characters long. Bucket "
                "names can consist only of lowercase letters, numbers, periods (.), and "
                "hyphens (-). Bucket names must begin and end with a letter or number.",
                min_length=3,
                max_length=63,
                pattern=r"[a-z0-9][a-z0-9.-]*[a-z0-9]",
                source="https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html",
            ),
        ),
        "tags": _tags("s3", "PutBucketTagging", "Tagging.TagSet"),
    },
    "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration": {
        "bucket": REFERENCE,
        "corsRules[].allowedHeaders[]": Api(
            "s3", "PutBucketCors", "CORSConfiguration.CORSRules[].AllowedHeaders[]"
        ),
        "corsRules[].allowedMethods[]": Api(
            "s3", "PutBucketCors", "CORSConfiguration.CORSRules[].AllowedMethods[]"
        ),
        "corsRules[].allowedOrigins[]": Api(
            "s3", "PutBucketCors", "CORSConfiguration.CORSRules[].AllowedOrigins[]"
        ),
        "corsRules[].exposeHeaders[]": Api(
            "s3", "PutBucketCors", "CORSConfiguration.CORSRules[].ExposeHeaders[]"
        ),
        "corsRules[].maxAgeSeconds": Api(
            "s3", "PutBucketCors", "CORSConfiguration.CORSRules[].MaxAgeSeconds"
        ),
    },
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": {
        "bucket": REFERENCE,
        "rules[].id": Api(
            "s3", "PutBucketLifecycleConfiguration", "LifecycleConfiguration.Rules[].ID"
        ),
        "rules[].status": Api(
            "s3", "PutBucketLifecycleConfiguration", "LifecycleConfiguration.Rules[].Status"
        ),
        "rules[].filter.prefix": Api(
            "s3", "PutBucketLifecycleConfiguration", "LifecycleConfiguration.Rules[].Filter.Prefix"
        ),
        "rules[].transitions[].storageClass": Api(
            "s3",
            "PutBucketLifecycleConfiguration",
            "LifecycleConfiguration.Rules[].Transitions[].StorageClass",
        ),
        # Days: no limit in the model ("0 or any positive integer"); the classes' minimums
        # are a rule (`_transition_days`).
        "rules[].transitions[].days": Api(
            "s3",
            "PutBucketLifecycleConfiguration",
            "LifecycleConfiguration.Rules[].Transitions[].Days",
        ),
    },
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": {
        "bucket": REFERENCE,
        "rule.objectOwnership": Api(
            "s3", "PutBucketOwnershipControls", "OwnershipControls.Rules[].ObjectOwnership"
        ),
    },
    "aws:s3/bucketPolicy:BucketPolicy": {"bucket": REFERENCE, "policy": DOCUMENT},
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {"bucket": REFERENCE},
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": {
        "bucket": REFERENCE,
        "rules[].applyServerSideEncryptionByDefault.kmsMasterKeyId": REFERENCE,
        "rules[].applyServerSideEncryptionByDefault.sseAlgorithm": Api(
            "s3",
            "PutBucketEncryption",
            "ServerSideEncryptionConfiguration.Rules[].ApplyServerSideEncryptionByDefault.SSEAlgorithm",
        ),
    },
    "aws:s3/bucketVersioning:BucketVersioning": {
        "bucket": REFERENCE,
        "versioningConfiguration.status": Api(
            "s3", "PutBucketVersioning", "VersioningConfiguration.Status"
        ),
    },
    "aws:sfn/stateMachine:StateMachine": {
        "roleArn": REFERENCE,
        "loggingConfiguration.logDestination": REFERENCE,
        "name": Api(
            "stepfunctions",
            "CreateStateMachine",
            "name",
            Documented(
                "To enable logging with CloudWatch Logs, the name should only contain "
                "0-9, A-Z, a-z, - and _.",
                pattern=r"[0-9A-Za-z_-]+",
            ),
        ),
        "type": Api("stepfunctions", "CreateStateMachine", "type"),
        "definition": Api("stepfunctions", "CreateStateMachine", "definition"),
        "loggingConfiguration.level": Api(
            "stepfunctions", "CreateStateMachine", "loggingConfiguration.level"
        ),
        "tags": _tags("stepfunctions", "CreateStateMachine", "tags"),
    },
    "aws:sns/topic:Topic": {
        "kmsMasterKeyId": REFERENCE,
        "name": Api(
            "sns",
            "CreateTopic",
            "Name",
            Documented(
                "Constraints: Topic names must be made up of only uppercase and lowercase "
                "ASCII letters, numbers, underscores, and hyphens, and must be between 1 and "
                "256 characters long.",
                min_length=1,
                max_length=256,
                pattern=r"[A-Za-z0-9_-]+",
            ),
        ),
        "tags": _tags("sns", "CreateTopic", "Tags"),
    },
    "aws:sns/topicPolicy:TopicPolicy": {"arn": REFERENCE, "policy": DOCUMENT},
    "aws:sns/topicSubscription:TopicSubscription": {
        "topic": REFERENCE,
        "protocol": Api(
            "sns",
            "Subscribe",
            "Protocol",
            Documented(
                "email – delivery of message via SMTP",  # noqa: RUF001 - the model's dash
                pattern=r"http|https|email|email-json|sms|sqs|application|lambda|firehose",
            ),
        ),
        "endpoint": Api("sns", "Subscribe", "Endpoint"),
        "filterPolicy": Unchecked("a JSON document: checked by RULES (SNS's filter constraints)"),
        "filterPolicyScope": Api(
            "sns",
            "Subscribe",
            "Attributes",
            Documented(
                "MessageAttributes (default) – The filter is applied on the message "  # noqa: RUF001
                "attributes.",
                pattern=r"MessageAttributes|MessageBody",
            ),
        ),
    },
    "aws:sqs/queue:Queue": {
        "kmsMasterKeyId": REFERENCE,
        "name": Api(
            "sqs",
            "CreateQueue",
            "QueueName",
            Documented(
                "A queue name can have up to 80 characters.",
                min_length=1,
                max_length=80,
                pattern=r"[A-Za-z0-9_-]+",
            ),
        ),
        "messageRetentionSeconds": Api(
            "sqs",
            "CreateQueue",
            "Attributes",
            Documented(
                "An integer from 60 seconds (1 minute) to 1,209,600 seconds (14 days).",
                minimum=60,
                maximum=1_209_600,
            ),
        ),
        "tags": _tags("sqs", "CreateQueue", "tags"),
    },
    "aws:sqs/queuePolicy:QueuePolicy": {"queueUrl": REFERENCE, "policy": DOCUMENT},
    "random:index/randomPassword:RandomPassword": {"*": NOT_AWS},
}


# Names AWS keeps unique, and within what: two resources of one type with one name would not be
# refused by every API (CreateQueue and PutRule return or update the existing one), they would
# silently become one. `(name property, scope property or None for the account and region)`.
UNIQUE_NAMES: Mapping[str, tuple[str, str | None]] = {
    "aws:cloudwatch/eventBus:EventBus": ("name", None),
    "aws:cloudwatch/eventRule:EventRule": ("name", "eventBusName"),
    "aws:cloudwatch/eventTarget:EventTarget": ("targetId", "rule"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", None),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("name", None),
    "aws:cloudwatch/dashboard:Dashboard": ("dashboardName", None),
    "aws:dynamodb/table:Table": ("name", None),
    "aws:iam/role:Role": ("name", None),
    "aws:iam/rolePolicy:RolePolicy": ("name", "role"),
    "aws:kms/alias:Alias": ("name", None),
    "aws:lambda/function:Function": ("name", None),
    "aws:lambda/alias:Alias": ("name", "functionName"),
    "aws:lambda/permission:Permission": ("statementId", "function"),
    # CreateFunctionUrlConfig on a qualifier that has a URL is refused (a conflict).
    "aws:lambda/functionUrl:FunctionUrl": ("qualifier", "functionName"),
    # PutProvisionedConcurrencyConfig on a qualifier that has one replaces it.
    "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": (
        "qualifier",
        "functionName",
    ),
    "aws:s3/bucket:Bucket": ("bucket", None),
    "aws:sfn/stateMachine:StateMachine": ("name", None),
    "aws:sns/topic:Topic": ("name", None),
    "aws:sqs/queue:Queue": ("name", None),
    "aws:cognito/userPool:UserPool": ("name", None),
    "aws:apigatewayv2/api:Api": ("name", None),
}


def unique_key(type_: str, inputs: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
    """What must not repeat within a stack for a resource of `type_` (None if nothing)."""
    if type_ not in UNIQUE_NAMES:
        return None
    prop, scope = UNIQUE_NAMES[type_]
    return (type_, inputs.get(scope) if scope else None, inputs.get(prop))


# -- refusals no member's shape states ----------------------------------------------------------

FUNCTION = "aws:lambda/function:Function"
ALIAS = "aws:lambda/alias:Alias"
PROVISIONED = "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"
LATEST = "$LATEST"  # a function's unpublished version

# Where the sentences below were read. The provisioned-concurrency ones in the Lambda guide's
# own sources (GitHub, retired by AWS in October 2023, at the commit named). SnapStart for Python
# is newer: its sentences were read in a stored copy of the Lambda FAQ page and in aws-cdk's
# `aws-lambda` README, which says what the SnapStart page says (a newer quote of that page adds
# "Amazon S3 Files" to what SnapStart does not support). The live pages could not be reached.
LAMBDA_GUIDE_SOURCE = "awsdocs/aws-lambda-developer-guide, doc_source/"
SNAPSTART_PAGE = (
    "https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html (as aws/aws-cdk's "
    "packages/aws-cdk-lib/aws-lambda/README.md states it)"
)
LAMBDA_FAQ = "https://aws.amazon.com/lambda/faqs/ (SnapStart)"
PROVISIONED_PAGE = (
    "https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html ("
    + LAMBDA_GUIDE_SOURCE
    + "provisioned-concurrency.md, 2023-10-30)"
)
# Function URLs: read in a stored copy of the live page (its opening paragraphs).
URLS_PAGE = "https://docs.aws.amazon.com/lambda/latest/dg/lambda-urls.html"
CONCURRENCY_PAGE = (
    "https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html ("
    + LAMBDA_GUIDE_SOURCE
    + "configuration-concurrency.md at 2029de0)"
)


# Scheduled rules: the EventBridge User Guide's two pages on schedule expressions (the rules
# `stack.schedules` checks, quoted there), and pulumi-aws's `EventRule` documentation (the
# installed SDK, 7.51.1, `schedule_expression`); moto refuses the same with "ScheduleExpression
# is supported only on the default event bus." (tried, moto 5.2.5).
SCHEDULE_PAGES = (
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html, "
    "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rate-expressions.html"
)
PULUMI_EVENT_RULE = "pulumi-aws 7.51.1, cloudwatch/event_rule.py, schedule_expression"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"


@attrs.frozen(kw_only=True)
class Registered:
    """A resource registered earlier in the same run: what a rule spanning two resources reads."""

    type: str
    inputs: Mapping[str, Any]


Check = Callable[[str, Mapping[str, Any], Sequence[Registered]], Iterator[str]]


@attrs.frozen(kw_only=True)
class Rule:
    """A refusal AWS states only in prose: `says` is quoted from `source`. `check(type, inputs,
    registered)` yields what `operation` would refuse in a registration of one of `types`,
    given the resources registered before it (a rule spanning two resources is checked at
    whichever comes second; with nothing registered, it sees only the one resource)."""

    types: frozenset[str]
    operation: str
    says: str
    source: str
    check: Check


def function_name(reference: Any) -> str | None:
    """The function a name, partial ARN or ARN (with or without a qualifier) names."""
    if not isinstance(reference, str):
        return None
    return reference.split(":function:")[-1].split(":")[0]


def _snapstart(inputs: Mapping[str, Any]) -> bool:
    return (inputs.get("snapStart") or {}).get("applyOn") == "PublishedVersions"


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _of_function(registered: Sequence[Registered], type_: str, name: str | None) -> list[Any]:
    """The inputs of the resources of `type_` registered for function `name`."""
    key = "name" if type_ == FUNCTION else "functionName"
    return [
        r.inputs
        for r in registered
        if r.type == type_ and name is not None and function_name(r.inputs.get(key)) == name
    ]


# The runtimes SnapStart supports, as the FAQ states them: family and lowest version.
_SNAPSTART_RUNTIMES = {"java": 11, "python3.": 12, "dotnet": 8}


def snapstart_supports(runtime: str) -> bool:
    """Whether SnapStart supports `runtime` (a value of botocore's `Runtime` enum)."""
    found = re.fullmatch(r"(java|python3\.|dotnet)(\d+)(\.al2023)?", runtime)
    return found is not None and int(found[2]) >= _SNAPSTART_RUNTIMES[found[1]]


def _snapstart_runtime(
    _type: str, inputs: Mapping[str, Any], _registered: Sequence[Registered]
) -> Iterator[str]:
    runtime = inputs.get("runtime")
    if _snapstart(inputs) and isinstance(runtime, str) and not snapstart_supports(runtime):
        yield f"SnapStart on runtime {runtime!r}, which SnapStart does not support"


def _snapstart_storage(
    _type: str, inputs: Mapping[str, Any], _registered: Sequence[Registered]
) -> Iterator[str]:
    size = _int((inputs.get("ephemeralStorage") or {}).get("size"))
    if _snapstart(inputs) and size is not None and size > 512:
        yield f"SnapStart with {size} MB of ephemeral storage"


def _snapstart_and_provisioned(
    type_: str, inputs: Mapping[str, Any], registered: Sequence[Registered]
) -> Iterator[str]:
    """A function with SnapStart and a provisioned-concurrency config, in either order."""
    if type_ == PROVISIONED:
        name = function_name(inputs.get("functionName"))
        if any(_snapstart(f) for f in _of_function(registered, FUNCTION, name)):
            yield f"provisioned concurrency on {name!r}, whose SnapStart is on"
    elif _snapstart(inputs) and _of_function(registered, PROVISIONED, inputs.get("name")):
        yield f"SnapStart on {inputs.get('name')!r}, which has provisioned concurrency"


def _provisioned_on_latest(
    type_: str, inputs: Mapping[str, Any], registered: Sequence[Registered]
) -> Iterator[str]:
    """Provisioned concurrency on `$LATEST`, or on an alias that points to it."""
    if type_ == PROVISIONED:
        name, qualifier = function_name(inputs.get("functionName")), inputs.get("qualifier")
        if qualifier == LATEST:
            yield f"provisioned concurrency on {name}:{LATEST}"
        for alias in _of_function(registered, ALIAS, name):
            if alias.get("name") == qualifier and alias.get("functionVersion") == LATEST:
                yield f"provisioned concurrency on {name}:{qualifier}, an alias of {LATEST}"
    elif inputs.get("functionVersion") == LATEST:  # an alias of $LATEST
        name = function_name(inputs.get("functionName"))
        for config in _of_function(registered, PROVISIONED, name):
            if config.get("qualifier") == inputs.get("name"):
                yield f"{name}:{inputs.get('name')} (provisioned) pointed to {LATEST}"


def _provisioned_within_reserved(
    type_: str, inputs: Mapping[str, Any], registered: Sequence[Registered]
) -> Iterator[str]:
    """All the provisioned concurrency of a function at most its reserved concurrency (when it
    reserves any: -1 or none reserves nothing)."""
    if type_ == PROVISIONED:
        name = function_name(inputs.get("functionName"))
        functions = _of_function(registered, FUNCTION, name)
        configs = [*_of_function(registered, PROVISIONED, name), inputs]
    else:
        name = inputs.get("name")
        functions = [inputs]
        configs = _of_function(registered, PROVISIONED, name)
    provisioned = sum(_int(c.get("provisionedConcurrentExecutions")) or 0 for c in configs)
    for function in functions:
        reserved = _int(function.get("reservedConcurrentExecutions"))
        if configs and reserved is not None and 0 <= reserved < provisioned:
            yield f"{provisioned} provisioned on {name!r}, which reserves {reserved}"


def _url_on_alias(
    _type: str, inputs: Mapping[str, Any], registered: Sequence[Registered]
) -> Iterator[str]:
    """A function URL's qualifier names one of the function's aliases (none: `$LATEST`). A
    version number is refused on its own; an alias that does not exist only once the function
    is known (registered before) without it: the URL names the alias, so it comes after."""
    name, qualifier = function_name(inputs.get("functionName")), inputs.get("qualifier")
    if not isinstance(qualifier, str) or qualifier == LATEST:  # $LATEST: no qualifier (model)
        return
    if qualifier.isdigit():
        yield f"a function URL on {name}:{qualifier}, a version"
        return
    aliases = {a.get("name") for a in _of_function(registered, ALIAS, name)}
    if _of_function(registered, FUNCTION, name) and qualifier not in aliases:
        yield f"a function URL on {name}:{qualifier}, which is not an alias of {name!r}"


ENVIRONMENT_PAGE = "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"
ENVIRONMENT_MEASURE_PAGE = (
    "https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-deployment.html"
)


def _environment_size(
    _type: str, inputs: Mapping[str, Any], _registered: Sequence[Registered]
) -> Iterator[str]:
    """A function's variables over 4 KB, measured as Lambda measures them. Values not known yet
    (a preview's unknowns) are left out: what is known is then a lower bound."""
    variables = (inputs.get("environment") or {}).get("variables") or {}
    known = {k: v for k, v in variables.items() if isinstance(k, str) and isinstance(v, str)}
    size = environment_size(known)
    if size > LAMBDA_ENVIRONMENT_MAX_BYTES:
        largest = max(known, key=lambda k: len(known[k].encode()))
        yield (
            f"an environment of {size} bytes, over {LAMBDA_ENVIRONMENT_MAX_BYTES} "
            f"(largest: {largest})"
        )


def _schedule_syntax(
    _type: str, inputs: Mapping[str, Any], _registered: Sequence[Registered]
) -> Iterator[str]:
    expression = inputs.get("scheduleExpression")
    if isinstance(expression, str):
        for problem in schedules.problems(expression):
            yield f"schedule expression {expression!r}: {problem}"


def _schedule_on_default_bus(
    _type: str, inputs: Mapping[str, Any], _registered: Sequence[Registered]
) -> Iterator[str]:
    bus = inputs.get("eventBusName")
    if inputs.get("scheduleExpression") is not None and bus not in (None, "default"):
        yield f"a scheduled rule on the event bus {bus!r}"


def _pattern_or_schedule(
    _type: str, inputs: Mapping[str, Any], _registered: Sequence[Registered]
) -> Iterator[str]:
    if inputs.get("eventPattern") is None and inputs.get("scheduleExpression") is None:
        yield "a rule with neither an event pattern nor a schedule expression"


LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
S3_TRANSITIONS_PAGE = (
    "https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-"
    "considerations.html (Constraints; the API Reference's Transition.Days says 'greater than "
    "30': the User Guide's 'at least 30' is applied, the error S3 gives for 29)"
)
INFREQUENT_ACCESS = frozenset({"STANDARD_IA", "ONEZONE_IA"})
INFREQUENT_ACCESS_MIN_DAYS = 30


def _transition_days(
    _type: str, inputs: Mapping[str, Any], _registered: Sequence[Registered]
) -> Iterator[str]:
    """A transition to S3 Standard-IA or One Zone-IA sooner than 30 days after creation."""
    for rule in inputs.get("rules") or []:
        for transition in rule.get("transitions") or []:
            days = _int(transition.get("days"))
            kind = transition.get("storageClass")
            if kind in INFREQUENT_ACCESS and days is not None and days < INFREQUENT_ACCESS_MIN_DAYS:
                yield f"rule {rule.get('id')!r} moves objects to {kind} after {days} days"


RULES: tuple[Rule, ...] = (
    Rule(
        types=frozenset({FUNCTION}),
        operation="lambda:CreateFunction",
        says="Function environment variables: 4 KB, for all environment variables associated "
        "with the function, in aggregate. [...] The maximum size of the variables object that "
        "is stored in the function's configuration must not exceed 4096 bytes. This includes "
        "key names, values, quotes, commas, and brackets.",
        source=f"{ENVIRONMENT_PAGE}; {ENVIRONMENT_MEASURE_PAGE}",
        check=_environment_size,
    ),
    Rule(
        types=frozenset({FUNCTION}),
        operation="lambda:CreateFunction",
        says="Lambda SnapStart supports multiple runtimes, including Java 11 (and newer), "
        "Python 3.12 (and newer) and .NET 8 (and newer).",
        source=LAMBDA_FAQ,
        check=_snapstart_runtime,
    ),
    Rule(
        types=frozenset({FUNCTION}),
        operation="lambda:CreateFunction",
        says="SnapStart does not support provisioned concurrency, Amazon Elastic File System "
        "(Amazon EFS), or ephemeral storage greater than 512 MB.",
        source=SNAPSTART_PAGE,
        check=_snapstart_storage,
    ),
    Rule(
        types=frozenset({FUNCTION, PROVISIONED}),
        operation="lambda:PutProvisionedConcurrencyConfig",
        says="Lambda SnapStart and PC cannot be enabled at the same time, on the same function.",
        source=LAMBDA_FAQ,
        check=_snapstart_and_provisioned,
    ),
    Rule(
        types=frozenset({PROVISIONED, ALIAS}),
        operation="lambda:PutProvisionedConcurrencyConfig",
        says="Provisioned Concurrency is not supported on the unpublished version of the "
        "function ($LATEST). [...] you can't allocate provisioned concurrency on an alias that "
        "points to the unpublished version ($LATEST).",
        source=f"{PROVISIONED_PAGE}; {CONCURRENCY_PAGE}",
        check=_provisioned_on_latest,
    ),
    Rule(
        types=frozenset({FUNCTION, PROVISIONED}),
        operation="lambda:PutProvisionedConcurrencyConfig",
        says="You can't allocate more provisioned concurrency than reserved concurrency for a "
        "function.",
        source=PROVISIONED_PAGE,
        check=_provisioned_within_reserved,
    ),
    Rule(
        types=frozenset({FUNCTION_URL}),
        operation="lambda:CreateFunctionUrlConfig",
        says="You can apply function URLs to any function alias, or to the $LATEST unpublished "
        "function version. You can't add a function URL to any other function version.",
        source=URLS_PAGE,
        check=_url_on_alias,
    ),
    Rule(
        types=frozenset({EVENT_RULE}),
        operation="events:PutRule",
        says="Cron expressions have six required fields, which are separated by white space. "
        "[...] If you specify a value or a * (asterisk) in one of the fields, you must use a ? "
        "(question mark) in the other. [...] If the value is equal to 1, then the unit must be "
        "singular. If the value is greater than 1, the unit must be plural.",
        source=SCHEDULE_PAGES,
        check=_schedule_syntax,
    ),
    Rule(
        types=frozenset({EVENT_RULE}),
        operation="events:PutRule",
        says="[schedule_expression] Can only be used on the default event bus.",
        source=PULUMI_EVENT_RULE,
        check=_schedule_on_default_bus,
    ),
    Rule(
        types=frozenset({EVENT_RULE}),
        operation="events:PutRule",
        says="A rule must contain at least an EventPattern or ScheduleExpression.",
        source="botocore's events model, PutRule's documentation",
        check=_pattern_or_schedule,
    ),
)


SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
SNS_FILTER_PAGE = (
    "https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html"
)
FILTER_KEYS_MAX = 5
FILTER_COMBINATIONS_MAX = 150
FILTER_POLICY_BYTES_MAX = 256 * 1024


def _filter_policy(
    _type: str, inputs: Mapping[str, Any], _registered: Sequence[Registered]
) -> Iterator[str]:
    text = inputs.get("filterPolicy")
    if not isinstance(text, str):
        return
    if len(text.encode("utf-8")) > FILTER_POLICY_BYTES_MAX:
        yield f"the filter policy is over {FILTER_POLICY_BYTES_MAX} bytes"
    try:
        policy = json.loads(text)
    except ValueError:
        yield "the filter policy is not JSON"
        return
    if not isinstance(policy, dict):
        yield "the filter policy is not a JSON object"
        return
    if len(policy) > FILTER_KEYS_MAX:
        yield f"the filter policy has {len(policy)} keys"
    combinations = 1
    for value in policy.values():
        combinations *= len(value) if isinstance(value, list) else 1
    if combinations > FILTER_COMBINATIONS_MAX:
        yield f"the filter policy's values combine {combinations} ways"
    scope = inputs.get("filterPolicyScope") or "MessageAttributes"
    if scope == "MessageAttributes" and any(isinstance(v, dict) for v in policy.values()):
        yield "a filter policy on message attributes is nested"


MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
# Read in a stored copy of the page (its English Markdown, docs.aws.amazon.com/he_il/lambda/...).
EVENT_FILTERING_PAGE = "https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html"
MAPPING_FILTERS_MAX = 5
"""Filters per event-source mapping by default (a quota increase allows up to 10: a stack is held
to the default, which every account has)."""


def _mapping_filters(
    _type: str, inputs: Mapping[str, Any], _registered: Sequence[Registered]
) -> Iterator[str]:
    filters = (inputs.get("filterCriteria") or {}).get("filters") or []
    if len(filters) > MAPPING_FILTERS_MAX:
        yield f"{len(filters)} filters on one event source mapping, over {MAPPING_FILTERS_MAX}"


RULES = (
    *RULES,
    Rule(
        types=frozenset({MAPPING}),
        operation="lambda:CreateEventSourceMapping",
        says="By default, you can define up to five different filters for a single event "
        "source mapping. [...] you can request a quota increase for up to 10 filters for each "
        "event source. If you attempt to add more filters than your current quota permits, "
        "Lambda will return an error",
        source=EVENT_FILTERING_PAGE,  # each pattern's length: the model's, in `LIMITS`
        check=_mapping_filters,
    ),
    Rule(
        types=frozenset({SUBSCRIPTION}),
        operation="sns:Subscribe",
        says="The total combination of values in a filter policy must not exceed 150. [...] A "
        "filter policy can have a maximum of five keys. [...] The maximum size of a filter "
        "policy is 256 KB.",
        # The same page's "Policy constraints for attribute-based filtering" also refuses a
        # nested policy when the scope is MessageAttributes (the default); checked as well.
        source=SNS_FILTER_PAGE,
        check=_filter_policy,
    ),
    Rule(
        types=frozenset({LIFECYCLE}),
        operation="s3:PutBucketLifecycleConfiguration",
        says="Before you transition objects to S3 Standard-IA or S3 One Zone-IA, you must "
        "store them for at least 30 days in Amazon S3. For example, you cannot create a "
        "Lifecycle rule to transition objects to the S3 Standard-IA storage class one day "
        "after you create them.",
        source=S3_TRANSITIONS_PAGE,
        check=_transition_days,
    ),
)


def rule_violations(
    type_: str, inputs: Mapping[str, Any], registered: Sequence[Registered] = ()
) -> list[str]:
    """What `RULES` refuse in a registration of `type_`, given what was registered before."""
    return [
        f"{rule.operation}: {problem}. AWS: {rule.says!r} ({rule.source})"
        for rule in RULES
        if type_ in rule.types
        for problem in rule.check(type_, inputs, registered)
    ]


# -- the models ---------------------------------------------------------------------------------


@functools.cache
def _service(service: str) -> botocore.model.ServiceModel:
    return botocore.session.get_session().get_service_model(service)


def shape_of(api: Api) -> botocore.model.Shape:
    """The model's shape for `api`'s member (KeyError/ValueError if the path is wrong)."""
    model = _service(api.service)
    if api.shape is not None:
        return model.shape_for(api.shape)
    shape: botocore.model.Shape | None = model.operation_model(api.operation).input_shape
    for step in api.path.split("."):
        name = step.removesuffix("[]")
        if not isinstance(shape, botocore.model.StructureShape) or name not in shape.members:
            raise KeyError(f"{api.service} {api.operation}: no member {step!r} in {api.path!r}")
        shape = shape.members[name]
        if step.endswith("[]"):
            if not isinstance(shape, botocore.model.ListShape):
                raise KeyError(f"{api.service} {api.operation}: {name!r} is not a list")
            shape = shape.member
    assert shape is not None
    return shape


def plain_text(documentation: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", documentation)).split())


def documented_sentences_hold() -> list[str]:
    """Every `Documented` limit sourced from botocore whose sentence the model no longer says."""
    stale = []
    for type_, properties in LIMITS.items():
        for path, api in properties.items():
            if not (
                isinstance(api, Api) and api.documented and api.documented.source == "botocore"
            ):
                continue
            if plain_text(api.documented.says) not in plain_text(shape_of(api).documentation):
                stale.append(f"{type_} {path}: {api.documented.says!r}")
    return stale


_APIGW_NAME = re.compile(r"StringWithLengthBetween(\d+)And(\d+)")


@attrs.frozen
class Constraint:
    min: int | None = None
    max: int | None = None
    pattern: str | None = None
    enum: tuple[str, ...] = ()

    def problems(self, value: Any, *, length: bool) -> Iterator[str]:
        if length:
            size = len(value)
            if self.min is not None and size < self.min:
                yield f"Member must have length greater than or equal to {self.min}"
            if self.max is not None and size > self.max:
                yield f"Member must have length less than or equal to {self.max}"
        else:
            if self.min is not None and value < self.min:
                yield f"Member must have value greater than or equal to {self.min}"
            if self.max is not None and value > self.max:
                yield f"Member must have value less than or equal to {self.max}"
        if self.pattern is not None and isinstance(value, str) and not _full(self.pattern, value):
            yield f"Member must satisfy regular expression pattern: {self.pattern}"
        if self.enum and value not in self.enum:
            yield f"Member must satisfy enum value set: [{', '.join(self.enum)}]"


@functools.cache
def _regex(pattern: str) -> regex.Pattern[str]:
    """AWS's patterns are Java regular expressions (tag patterns use `\\p{L}` and the like):
    the `regex` package reads them, `re` does not."""
    return regex.compile(pattern)


def _full(pattern: str, value: str) -> bool:
    """AWS validates the whole value against the pattern (Java's `matches`)."""
    return _regex(pattern).fullmatch(value) is not None


def constraints(shape: botocore.model.Shape, documented: Documented | None) -> list[Constraint]:
    """The model's constraints on `shape` and, when given, the documented one."""
    meta = shape.metadata
    found = [
        Constraint(
            min=meta.get("min"),
            max=meta.get("max"),
            pattern=meta.get("pattern"),
            enum=tuple(getattr(shape, "enum", None) or ()),
        )
    ]
    if shape.type_name == "string" and (named := _APIGW_NAME.fullmatch(shape.name)):
        found.append(Constraint(min=int(named[1]), max=int(named[2])))
    if documented is not None:
        found.append(
            Constraint(
                min=documented.min_length
                if documented.min_length is not None
                else documented.minimum,
                max=documented.max_length
                if documented.max_length is not None
                else documented.maximum,
                pattern=documented.pattern,
            )
        )
    return found


# -- checking inputs ----------------------------------------------------------------------------


def values_at(inputs: Any, path: str) -> Iterator[Any]:
    """Every value at `path` (`a.b[].c`) in a resource's inputs; none where a step is absent."""
    head, _, rest = path.partition(".")
    key = head.removesuffix("[]")
    if not isinstance(inputs, Mapping) or inputs.get(key) is None:
        return
    value = inputs[key]
    items = (value if isinstance(value, list) else [value]) if head.endswith("[]") else [value]
    for item in items:
        if rest:
            yield from values_at(item, rest)
        else:
            yield item


def _check(value: Any, shape: botocore.model.Shape, documented: Documented | None) -> list[str]:
    """Problems of one value against its member's shape, in AWS's wording."""
    if isinstance(value, Mapping | list):
        return _check_collection(value, shape)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return []  # a flag, or an unresolved value: nothing to check yet
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    found = constraints(shape, documented)
    if shape.type_name == "map":
        found = found[1:]  # a map member (SQS's Attributes) documented for one entry's value
    return [p for c in found for p in c.problems(value, length=isinstance(value, str))]


def _check_collection(
    value: Mapping[str, Any] | list[Any], shape: botocore.model.Shape
) -> list[str]:
    """A map, list or structure against its shape, entry by entry. A Pulumi map (tags,
    dimensions) may stand for a list of `{Key|Name, Value}` structures."""
    if not isinstance(shape, botocore.model.MapShape | botocore.model.ListShape):
        if isinstance(shape, botocore.model.StructureShape) and isinstance(value, Mapping):
            return [
                f"{name}: {problem}"
                for name, member in shape.members.items()
                if name in value
                for problem in _check(value[name], member, None)
            ]
        return []
    problems = [p for c in constraints(shape, None) for p in c.problems(value, length=True)]
    if isinstance(shape, botocore.model.ListShape) and isinstance(value, list):
        return problems + [p for item in value for p in _check(item, shape.member, None)]
    if not isinstance(value, Mapping):
        return problems
    for key, item in value.items():
        if isinstance(shape, botocore.model.MapShape):
            problems += [f"key {key!r}: {p}" for p in _check(key, shape.key, None)]
            problems += [f"{key!r}: {p}" for p in _check(item, shape.value, None)]
        else:
            pair = {"Key": key, "Name": key, "Value": item}
            problems += [f"{key!r}: {p}" for p in _check(pair, shape.member, None)]
    return problems


def violations(
    type_: str, inputs: Mapping[str, Any], registered: Sequence[Registered] = ()
) -> list[str]:
    """What AWS would refuse in a registration of `type_` with `inputs` (camelCase, as the
    engine sees them), in AWS's own words (or its documentation's, for `RULES`, given the
    resources `registered` before); a type missing from `LIMITS` is refused too."""
    if type_.startswith("pulumi:") or not type_.startswith(("aws:", "random:")):
        return []
    if type_ not in LIMITS:
        return [f"{type_}: not in infra/limits.py's LIMITS, so nothing checks what AWS refuses"]
    problems = []
    for path, api in LIMITS[type_].items():
        if not isinstance(api, Api):
            continue
        shape = shape_of(api)
        for value in values_at(inputs, path):
            for problem in _check(value, shape, api.documented):
                problems.append(
                    f"{api.service}:{api.operation}: 1 validation error detected: Value "
                    f"{_shown(value)} at '{path}' failed to satisfy constraint: {problem}"
                )
    return problems + rule_violations(type_, inputs, registered)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# -- auto-naming --------------------------------------------------------------------------------


def autoname(type_: str, name: str, inputs: Mapping[str, Any]) -> dict[str, str]:
    """The property pulumi-aws would fill in for a registration that leaves it out, as
    `{property: value}` (empty when nothing is auto-named); a name longer than the provider
    allows raises, as the provider refuses the preview."""
    rule = AUTONAMED.get(type_)
    if rule is None:
        if not type_.startswith("aws:") or "name" not in LIMITS.get(type_, {}):
            return {}
        rule = AutoName("name", DEFAULT_AUTONAME_MAX)
    if inputs.get(rule.property) is not None:
        return {}
    if len(name) + 1 + RANDOM_HEX > rule.max_length:
        raise ValueError(
            f"{type_} {name!r}: name {name!r} plus {RANDOM_HEX + 1} random chars is longer "
            f"than maximum length {rule.max_length} (give it a shorter logical name or an "
            f"explicit {rule.property})"
        )
    suffix = hashlib.sha256(f"{type_}/{name}".encode()).hexdigest()[:RANDOM_HEX]
    value = f"{name}-{suffix}"
    return {rule.property: value.lower() if rule.lower else value}
