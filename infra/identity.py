"""Identity: who may call the API. A Cognito user pool with one app client and the `approvers`
group, or, when config `jwtIssuer` is set, an external OpenID issuer and its audience (nothing
is created then). Either way the API's JWT authorizer reads `issuer` and `audiences` from here,
and the functions that verify tokens themselves (behind a Function URL) get the same `issuer` and
`audience` (`auth.issuer`, `auth.audience` in the manifest's vocabulary): one issuer and one
audience, whichever path a request takes.

The pool's users are invited by an operator (no self sign-up): the API holds people's tasks,
and an open sign-up would let anyone in. The app client is public (no secret: browsers and CLIs
cannot keep one) and uses SRP, never plain passwords.
"""

from __future__ import annotations

import attrs
import pulumi
import pulumi_aws as aws

from infra.context import Deployment
from taskcore.model import Principal

ACCESS_TOKEN_MINUTES = 60
REFRESH_TOKEN_DAYS = 30


@attrs.frozen
class IdentityArgs:
    deployment: Deployment


class Identity(pulumi.ComponentResource):
    issuer: pulumi.Output[str]
    audience: pulumi.Output[str]  # the Cognito app client's id, or config jwtAudience
    audiences: pulumi.Output[list[str]]  # [audience], as the authorizer takes it
    user_pool_id: pulumi.Output[str]
    client_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("tasks:identity:Identity", name, None, opts)
        env = args.deployment
        config = env.config
        if config.jwt_issuer:
            self.issuer = pulumi.Output.from_input(config.jwt_issuer)
            self.audience = pulumi.Output.from_input(config.jwt_audience)
            self.user_pool_id = pulumi.Output.from_input("")
            self.client_id = pulumi.Output.from_input("")
        else:
            self._cognito(name, env)
        self.audiences = self.audience.apply(lambda audience: [audience])
        self.register_outputs(
            {
                "issuer": self.issuer,
                "userPoolId": self.user_pool_id,
                "clientId": self.client_id,
            }
        )

    def _cognito(self, name: str, env: Deployment) -> None:
        child = pulumi.ResourceOptions(parent=self)
        pool = aws.cognito.UserPool(
            f"{name}-users",
            name=f"{env.prefix}-users",
            username_attributes=["email"],
            auto_verified_attributes=["email"],
            admin_create_user_config=aws.cognito.UserPoolAdminCreateUserConfigArgs(
                allow_admin_create_user_only=True
            ),
            password_policy=aws.cognito.UserPoolPasswordPolicyArgs(
                minimum_length=12,
                require_lowercase=True,
                require_uppercase=True,
                require_numbers=True,
                require_symbols=True,
                temporary_password_validity_days=3,
            ),
            mfa_configuration="OPTIONAL",
            software_token_mfa_configuration=aws.cognito.UserPoolSoftwareTokenMfaConfigurationArgs(
                enabled=True
            ),
            account_recovery_setting=aws.cognito.UserPoolAccountRecoverySettingArgs(
                recovery_mechanisms=[
                    aws.cognito.UserPoolAccountRecoverySettingRecoveryMechanismArgs(
                        name="verified_email", priority=1
                    )
                ]
            ),
            deletion_protection="ACTIVE" if env.config.deletion_protection else "INACTIVE",
            opts=env.stateful(self),
        )
        client = aws.cognito.UserPoolClient(
            f"{name}-client",
            name=f"{env.prefix}-api",
            user_pool_id=pool.id,
            generate_secret=False,
            explicit_auth_flows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            prevent_user_existence_errors="ENABLED",
            enable_token_revocation=True,
            access_token_validity=ACCESS_TOKEN_MINUTES,
            id_token_validity=ACCESS_TOKEN_MINUTES,
            refresh_token_validity=REFRESH_TOKEN_DAYS,
            token_validity_units=aws.cognito.UserPoolClientTokenValidityUnitsArgs(
                access_token="minutes", id_token="minutes", refresh_token="days"
            ),
            opts=child,
        )
        aws.cognito.UserGroup(
            f"{name}-approvers",
            name=Principal.APPROVERS,
            user_pool_id=pool.id,
            description="May list pending approvals and decide on other users' tasks",
            opts=child,
        )
        self.issuer = pulumi.Output.concat("https://", pool.endpoint)
        self.audience = client.id
        self.user_pool_id = pool.id
        self.client_id = client.id
