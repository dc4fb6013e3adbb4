"""The tasks stack: config in, components (one per concern, wired by the manifest) out."""

import pulumi

from infra import (
    api,
    data,
    events,
    functions,
    identity,
    keys,
    monitoring,
    notifications,
    packaging,
    storage,
    urls,
)
from infra import state_machines as sm
from infra.context import Deployment
from infra.tags import tag_everything
from infra.wiring import Wiring, state_machine_arn
from stack.config import PROJECT, StackConfig
from stack.manifest import FUNCTIONS, WORKFLOWS

region = pulumi.Config("aws").get("region")
config = StackConfig.from_pulumi(pulumi.Config(), stack=pulumi.get_stack(), region=region)
tag_everything(PROJECT, config.stack, config.tags)
env = Deployment.current(config)
key = keys.Keys("keys", keys.KeysArgs(env))
table = data.Data("data", data.DataArgs(env, key.arn))
bucket = storage.Storage("storage", storage.StorageArgs(env, key.arn))
users = identity.Identity("identity", identity.IdentityArgs(env))
bus = events.Bus("events", events.BusArgs(env))
topic = notifications.Notifications("notifications", notifications.NotificationsArgs(env, key.arn))
wiring = Wiring(
    deployment=env,
    key_arn=key.arn,
    cursor_secret_arn=key.cursor_secret_arn,
    table_name=table.name,
    table_arn=table.arn,
    table_indexes=table.index_names,
    stream_arn=table.stream_arn,
    bucket_name=bucket.name,
    bucket_arn=bucket.arn,
    bus_name=bus.name,
    bus_arn=bus.arn,
    auth_issuer=users.issuer,
    auth_audience=users.audience,
    topic_arn=topic.topic_arn,
    state_machine_arns=[state_machine_arn(env, workflow) for workflow in WORKFLOWS],
)
code = pulumi.FileArchive(str(packaging.build_code_archive()))
layer = pulumi.FileArchive(str(packaging.build_layer()))
fns = functions.Functions("functions", functions.FunctionsArgs(env, FUNCTIONS, wiring, code, layer))
http = api.Api("api", api.ApiArgs(env, fns, users, key.arn))
# A URL waits for API Gateway's grants on the same function (one policy write at a time), and
# only for them: the API's backup URL must deploy when the API itself does not.
links = urls.FunctionUrls(
    "urls", urls.FunctionUrlsArgs(env, fns, after=list(http.permissions.values()))
)
subs = events.Subscriptions("subscriptions", events.SubscriptionsArgs(env, fns, wiring))
flows = sm.StateMachines("workflows", sm.StateMachinesArgs(env, WORKFLOWS, fns, wiring))
monitoring.Monitoring(
    "monitoring", monitoring.MonitoringArgs(env, key.arn, fns, subs, flows, http, table)
)

pulumi.export("apiUrl", http.url)
pulumi.export("functionUrls", links.url_outputs)
pulumi.export("region", env.region)
pulumi.export("tableName", table.name)
pulumi.export("bucketName", bucket.name)
pulumi.export("busName", bus.name)
pulumi.export("notificationsTopicArn", topic.topic_arn)
pulumi.export("stateMachineArns", {name: m.arn for name, m in flows.state_machines.items()})
pulumi.export("jwtIssuer", users.issuer)
pulumi.export("userPoolId", users.user_pool_id)
pulumi.export("userPoolClientId", users.client_id)
