"""The tasks stack: config in, components (one per concern, wired by the manifest) out."""

import pulumi

from handlers.manifest import FUNCTIONS, WORKFLOWS
from infra import api, data, events, functions, identity, keys, monitoring, packaging, storage
from infra import state_machines as sm
from infra.config import PROJECT, StackConfig
from infra.context import Deployment
from infra.tags import tag_everything
from infra.wiring import Wiring

region = pulumi.Config("aws").get("region")
config = StackConfig.from_pulumi(pulumi.Config(), stack=pulumi.get_stack(), region=region)
tag_everything(PROJECT, config.stack, config.tags)
env = Deployment.current(config)
key = keys.Keys("keys", keys.KeysArgs(env))
table = data.Data("data", data.DataArgs(env, key.arn))
bucket = storage.Storage("storage", storage.StorageArgs(env, key.arn))
users = identity.Identity("identity", identity.IdentityArgs(env))
bus = events.Bus("events", events.BusArgs(env))
wiring = Wiring.of(env, keys=key, data=table, storage=bucket, bus=bus, workflows=WORKFLOWS)
code = pulumi.FileArchive(str(packaging.build_code_archive()))
layer = pulumi.FileArchive(str(packaging.build_layer()))
fns = functions.Functions("functions", functions.FunctionsArgs(env, FUNCTIONS, wiring, code, layer))
http = api.Api("api", api.ApiArgs(env, fns, users, key.arn))
subs = events.Subscriptions("subscriptions", events.SubscriptionsArgs(env, fns, wiring))
flows = sm.StateMachines("workflows", sm.StateMachinesArgs(env, WORKFLOWS, fns, wiring))
monitoring.Monitoring(
    "monitoring", monitoring.MonitoringArgs(env, key.arn, fns, subs, flows, http, table)
)

pulumi.export("apiUrl", http.url)
pulumi.export("tableName", table.name)
pulumi.export("bucketName", bucket.name)
pulumi.export("busName", bus.name)
pulumi.export("stateMachineArns", {name: m.arn for name, m in flows.state_machines.items()})
pulumi.export("jwtIssuer", users.issuer)
pulumi.export("userPoolId", users.user_pool_id)
pulumi.export("userPoolClientId", users.client_id)
