// cloud-openapi.json sha256 632666061983f873e96ffff9eb0229d61541523dd8cf7d6f7355f9942b481827
// Generated from openapi/cloud-openapi.json by web/scripts/gen.mjs (go tool task web). Do not edit.
export interface paths {
    "/alarms": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Active alarms of every site you reach */
        get: operations["fleetAlarms"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/audit": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The cloud's audit trail, newest first: logins, user changes, commands to sites */
        get: operations["audit"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/login": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Log in with user name and password
         * @description Answers an access token and a refresh token. Too many attempts from one address, or too many failures of one user, are refused with 429 and Retry-After.
         */
        post: operations["login"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/logout": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** End the login the refresh token belongs to */
        post: operations["logout"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/me": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The logged-in user, its role and site scope */
        get: operations["me"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/auth/refresh": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Trade a refresh token for a new token pair
         * @description The refresh token is single-use: it is rotated. Presenting a used one revokes every token of that login.
         */
        post: operations["refresh"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/sites": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The sites you reach, with status and key figures */
        get: operations["listSites"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/sites/{site}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A site's status: registry entry, last heartbeat, sourcing */
        get: operations["getSite"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/sites/{site}/api/{path}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Call the site's own API (its gateway) through the hub
         * @description The request goes to the site's gateway across the leaf link (ems.{site}.down.api) with a delegation token the hub signs for you (your user as cloud:{user}, your cloud role); the answer is the gateway's, as its own OpenAPI document describes it, except that the site refusing the delegation is a 403 (a 401 always means your cloud token). The site must trust this hub (GET /trust-key, apigateway.yaml cloud_trust) and checks the role of the operation itself. Bodies up to 1 MiB less 16 KiB each way, 10 s. 503 when the site is not connected, 504 when it did not answer in time. WebSocket (/ws) is not proxied.
         */
        get: operations["siteAPIGet"];
        /**
         * Call the site's own API (its gateway) through the hub
         * @description The request goes to the site's gateway across the leaf link (ems.{site}.down.api) with a delegation token the hub signs for you (your user as cloud:{user}, your cloud role); the answer is the gateway's, as its own OpenAPI document describes it, except that the site refusing the delegation is a 403 (a 401 always means your cloud token). The site must trust this hub (GET /trust-key, apigateway.yaml cloud_trust) and checks the role of the operation itself. Bodies up to 1 MiB less 16 KiB each way, 10 s. 503 when the site is not connected, 504 when it did not answer in time. WebSocket (/ws) is not proxied.
         */
        put: operations["siteAPIPut"];
        /**
         * Call the site's own API (its gateway) through the hub
         * @description The request goes to the site's gateway across the leaf link (ems.{site}.down.api) with a delegation token the hub signs for you (your user as cloud:{user}, your cloud role); the answer is the gateway's, as its own OpenAPI document describes it, except that the site refusing the delegation is a 403 (a 401 always means your cloud token). The site must trust this hub (GET /trust-key, apigateway.yaml cloud_trust) and checks the role of the operation itself. Bodies up to 1 MiB less 16 KiB each way, 10 s. 503 when the site is not connected, 504 when it did not answer in time. WebSocket (/ws) is not proxied.
         */
        post: operations["siteAPIPost"];
        /**
         * Call the site's own API (its gateway) through the hub
         * @description The request goes to the site's gateway across the leaf link (ems.{site}.down.api) with a delegation token the hub signs for you (your user as cloud:{user}, your cloud role); the answer is the gateway's, as its own OpenAPI document describes it, except that the site refusing the delegation is a 403 (a 401 always means your cloud token). The site must trust this hub (GET /trust-key, apigateway.yaml cloud_trust) and checks the role of the operation itself. Bodies up to 1 MiB less 16 KiB each way, 10 s. 503 when the site is not connected, 504 when it did not answer in time. WebSocket (/ws) is not proxied.
         */
        delete: operations["siteAPIDelete"];
        options?: never;
        head?: never;
        /**
         * Call the site's own API (its gateway) through the hub
         * @description The request goes to the site's gateway across the leaf link (ems.{site}.down.api) with a delegation token the hub signs for you (your user as cloud:{user}, your cloud role); the answer is the gateway's, as its own OpenAPI document describes it, except that the site refusing the delegation is a 403 (a 401 always means your cloud token). The site must trust this hub (GET /trust-key, apigateway.yaml cloud_trust) and checks the role of the operation itself. Bodies up to 1 MiB less 16 KiB each way, 10 s. 503 when the site is not connected, 504 when it did not answer in time. WebSocket (/ws) is not proxied.
         */
        patch: operations["siteAPIPatch"];
        trace?: never;
    };
    "/sites/{site}/commands": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Send a command to a site and wait for its reply
         * @description A channel point command (channel, type, point) or an instance action (instance, action), sent on ems.{site}.down.cmd. The site checks it against its own allow-list of remotely controllable points; the answer is its result. 503 when the site is not connected, 504 when it did not answer in time (the command may still have run).
         */
        post: operations["siteCommand"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/sites/{site}/history": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A range of one or more points of a site from the cloud history
         * @description The parameters are hissrv's /history/range ones.
         */
        get: operations["siteHistory"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/sites/{site}/values": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The latest value of every point the site sent up */
        get: operations["siteValues"];
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/users": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Every user with its role and site scope */
        get: operations["listUsers"];
        put?: never;
        /** Create a user with a role and the sites it reaches */
        post: operations["createUser"];
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/users/{name}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Delete a user; its tokens stop working */
        delete: operations["deleteUser"];
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        Alarm: {
            /** @description the alarm as the site's alarmsrv last reported it */
            alarm: unknown;
            key: string;
            site: string;
        };
        AlarmsOutputBody: {
            alarms: components["schemas"]["Alarm"][] | null;
        };
        AuditEntry: {
            /** @description login, login_failed, logout, user_created, user_deleted, command */
            action: string;
            fields?: {
                [key: string]: string;
            };
            /** Format: int64 */
            seq: number;
            site?: string;
            /**
             * Format: int64
             * @description Unix ms
             */
            ts: number;
            user: string;
        };
        AuditOutputBody: {
            entries: components["schemas"]["AuditEntry"][] | null;
        };
        ChannelStatus: {
            /** Format: int32 */
            id: number;
            last_error?: string;
            name?: string;
            state: string;
        };
        CommandReply: {
            result: components["schemas"]["Result"];
            site: string;
        };
        CreateUserInputBody: {
            name: string;
            password: string;
            /** @enum {string} */
            role: "viewer" | "operator" | "engineer" | "admin";
            /** @description site ids the user reaches, or ["*"] for all */
            sites: string[] | null;
        };
        ErrorDetail: {
            /** @description Where the error occurred, e.g. 'body.items[3].tags' or 'path.thing-id' */
            location?: string;
            /** @description Error message text */
            message?: string;
            /** @description The value at the given location */
            value?: unknown;
        };
        ErrorModel: {
            /**
             * @description A human-readable explanation specific to this occurrence of the problem.
             * @example Property foo is required but is missing.
             */
            detail?: string;
            /** @description Optional list of individual error details */
            errors?: components["schemas"]["ErrorDetail"][] | null;
            /**
             * Format: uri
             * @description A URI reference that identifies the specific occurrence of the problem.
             * @example https://example.com/error-log/abc123
             */
            instance?: string;
            /**
             * Format: int64
             * @description HTTP status code
             * @example 400
             */
            status?: number;
            /**
             * @description A short, human-readable summary of the problem type. This value should not change between occurrences of the error.
             * @example Bad Request
             */
            title?: string;
            /**
             * Format: uri
             * @description A URI reference to human-readable documentation for the error.
             * @default about:blank
             * @example https://example.com/errors/example
             */
            type: string;
        };
        HistoryOutputBody: {
            series: components["schemas"]["Series"][] | null;
            site: string;
        };
        LoginInputBody: {
            /** @description password */
            password: string;
            /** @description user name */
            user: string;
        };
        RefreshInputBody: {
            refresh_token: string;
        };
        Result: {
            /** Format: int32 */
            channel: number;
            /** Format: int64 */
            done_ts?: number;
            error?: string;
            id: string;
            /** Format: int32 */
            point: number;
            status: string;
            type: string;
        };
        Series: {
            agg?: string;
            point: string;
            /** Format: int64 */
            step_ms?: number;
            tier: string;
            values: (number[] | null)[] | null;
        };
        ServiceStatus: {
            name: string;
            ready: boolean;
            version?: string;
        };
        SiteCommandInputBody: {
            action?: string;
            /**
             * Format: int32
             * @description channel point command: the channel
             */
            channel?: number;
            /**
             * Format: int32
             * @description instance action: the instance
             */
            instance?: number;
            /** Format: int32 */
            point?: number;
            /**
             * @description C = control, A = adjustment
             * @enum {string}
             */
            type?: "C" | "A" | "";
            /** Format: double */
            value: number;
            /**
             * Format: int64
             * @description how long the site waits for the outcome; default 5000 (the hub waits 5 s longer for the reply)
             */
            wait_ms?: number;
        };
        SiteDetail: {
            /** Format: int64 */
            active_alarms: number;
            /** Format: int64 */
            channels: number;
            /** Format: int64 */
            channels_up: number;
            /** @description listed in cloud.yaml (else registered by its first heartbeat) */
            configured: boolean;
            /**
             * Format: int64
             * @description Unix ms of the first heartbeat
             */
            first_seen?: number;
            /** @description the last heartbeat the site sent */
            heartbeat?: components["schemas"]["Status"];
            id: string;
            /** @description power, PV, grid, energy today and SOC, from the points cloud.yaml key_figures names */
            key_figures?: components["schemas"]["SiteKeyFigures"];
            /**
             * Format: int64
             * @description Unix ms of the last heartbeat
             */
            last_seen?: number;
            /**
             * Format: int64
             * @description uplink messages applied since the hub started
             */
            messages: number;
            name?: string;
            /** @description a heartbeat came within 3 heartbeat intervals */
            online: boolean;
            /**
             * Format: int64
             * @description points with a known value
             */
            points: number;
            /** @description the sourcing of the site's UPLINK stream into the hub */
            source: components["schemas"]["SourceState"];
            /** @description the edge appliance's version */
            version?: string;
        };
        SiteKeyFigures: {
            /**
             * @description counter: the increase of an energy counter point; integrated: the power point integrated at the hub
             * @enum {string}
             */
            energy_source?: "counter" | "integrated";
            /**
             * Format: double
             * @description energy since the site's local midnight in kWh
             */
            energy_today_kwh?: number;
            /**
             * Format: double
             * @description grid power in kW, positive = import
             */
            grid_kw?: number;
            /**
             * Format: double
             * @description site power (consumption) in kW
             */
            power_kw?: number;
            /**
             * Format: double
             * @description PV power in kW
             */
            pv_kw?: number;
            /**
             * Format: double
             * @description battery state of charge in %
             */
            soc?: number;
            /**
             * Format: int64
             * @description Unix ms of the newest value the figures come from
             */
            ts?: number;
        };
        SiteSummary: {
            /** Format: int64 */
            active_alarms: number;
            /** Format: int64 */
            channels: number;
            /** Format: int64 */
            channels_up: number;
            /** @description listed in cloud.yaml (else registered by its first heartbeat) */
            configured: boolean;
            /**
             * Format: int64
             * @description Unix ms of the first heartbeat
             */
            first_seen?: number;
            id: string;
            /** @description power, PV, grid, energy today and SOC, from the points cloud.yaml key_figures names */
            key_figures?: components["schemas"]["SiteKeyFigures"];
            /**
             * Format: int64
             * @description Unix ms of the last heartbeat
             */
            last_seen?: number;
            /**
             * Format: int64
             * @description uplink messages applied since the hub started
             */
            messages: number;
            name?: string;
            /** @description a heartbeat came within 3 heartbeat intervals */
            online: boolean;
            /**
             * Format: int64
             * @description points with a known value
             */
            points: number;
            /** @description the edge appliance's version */
            version?: string;
        };
        SitesOutputBody: {
            sites: components["schemas"]["SiteSummary"][] | null;
        };
        SourceState: {
            /**
             * Format: int64
             * @description ms since the source last delivered; absent while the link is down
             */
            active_ms?: number;
            /** Format: int64 */
            bytes: number;
            error?: string;
            /**
             * Format: int64
             * @description messages of UPLINK not sourced yet, as last reported
             */
            lag: number;
            /** Format: int64 */
            last_seq: number;
            /**
             * Format: int64
             * @description messages in the hub stream
             */
            messages: number;
            /** @description the hub stream, SITE_{site} */
            stream: string;
        };
        Status: {
            channels: components["schemas"]["ChannelStatus"][] | null;
            name?: string;
            services: components["schemas"]["ServiceStatus"][] | null;
            site: string;
            /** Format: int64 */
            ts: number;
            version: string;
        };
        TokenPair: {
            /** @description JWT (HS256) for the Authorization: Bearer header */
            access_token: string;
            /**
             * Format: int64
             * @description seconds until the access token expires
             */
            expires_in: number;
            /**
             * Format: int64
             * @description seconds until the refresh token expires
             */
            refresh_expires_in: number;
            /** @description single-use token for POST /auth/refresh; rotated on every use */
            refresh_token: string;
            /** @enum {string} */
            role: "viewer" | "operator" | "engineer" | "admin";
            /** @enum {string} */
            token_type: "Bearer";
            user: string;
        };
        UserView: {
            /**
             * Format: int64
             * @description Unix ms
             */
            created: number;
            name: string;
            /** @enum {string} */
            role: "viewer" | "operator" | "engineer" | "admin";
            /** @description the sites the user reaches; "*" = all (an admin reaches all) */
            sites: string[] | null;
            /**
             * Format: int64
             * @description Unix ms
             */
            updated: number;
        };
        UsersOutputBody: {
            users: components["schemas"]["UserView"][] | null;
        };
        Value: {
            /** @description the Redis hash on the site, e.g. comsrv:1:T or inst:5:M */
            key: string;
            /** @description the point id */
            point: string;
            quality: string;
            /** Format: int64 */
            ts: number;
            /** Format: double */
            value: number;
        };
        ValuesOutputBody: {
            site: string;
            values: components["schemas"]["Value"][] | null;
        };
    };
    responses: never;
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export interface operations {
    fleetAlarms: {
        parameters: {
            query?: {
                /** @description only this site */
                site?: string;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AlarmsOutputBody"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Unprocessable Entity */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    audit: {
        parameters: {
            query?: {
                limit?: number;
            };
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["AuditOutputBody"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Unprocessable Entity */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    login: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["LoginInputBody"];
            };
        };
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TokenPair"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Unprocessable Entity */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Too Many Requests */
            429: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    logout: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RefreshInputBody"];
            };
        };
        responses: {
            /** @description No Content */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Unprocessable Entity */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    me: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UserView"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    refresh: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["RefreshInputBody"];
            };
        };
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["TokenPair"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Unprocessable Entity */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    listSites: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SitesOutputBody"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    getSite: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                site: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["SiteDetail"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Not Found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Unprocessable Entity */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    siteAPIGet: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                site: string;
                /** @description the gateway path without its leading '/', e.g. points or alarms/active */
                path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description no or an invalid cloud access token */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site is not in your scope, refuses the hub's delegation (cloud_trust), or your role there does not allow the operation */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description no such site */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the body is too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site's answer was unreadable or too large */
            502: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site is not connected or does not serve its API to the hub */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site did not answer in time */
            504: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site gateway's answer */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    siteAPIPut: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                site: string;
                /** @description the gateway path without its leading '/', e.g. points or alarms/active */
                path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description no or an invalid cloud access token */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site is not in your scope, refuses the hub's delegation (cloud_trust), or your role there does not allow the operation */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description no such site */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the body is too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site's answer was unreadable or too large */
            502: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site is not connected or does not serve its API to the hub */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site did not answer in time */
            504: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site gateway's answer */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    siteAPIPost: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                site: string;
                /** @description the gateway path without its leading '/', e.g. points or alarms/active */
                path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description no or an invalid cloud access token */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site is not in your scope, refuses the hub's delegation (cloud_trust), or your role there does not allow the operation */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description no such site */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the body is too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site's answer was unreadable or too large */
            502: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site is not connected or does not serve its API to the hub */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site did not answer in time */
            504: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site gateway's answer */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    siteAPIDelete: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                site: string;
                /** @description the gateway path without its leading '/', e.g. points or alarms/active */
                path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description no or an invalid cloud access token */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site is not in your scope, refuses the hub's delegation (cloud_trust), or your role there does not allow the operation */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description no such site */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the body is too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site's answer was unreadable or too large */
            502: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site is not connected or does not serve its API to the hub */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site did not answer in time */
            504: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site gateway's answer */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    siteAPIPatch: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                site: string;
                /** @description the gateway path without its leading '/', e.g. points or alarms/active */
                path: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description no or an invalid cloud access token */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site is not in your scope, refuses the hub's delegation (cloud_trust), or your role there does not allow the operation */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description no such site */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the body is too large */
            413: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site's answer was unreadable or too large */
            502: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site is not connected or does not serve its API to the hub */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site did not answer in time */
            504: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description the site gateway's answer */
            default: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
        };
    };
    siteCommand: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                site: string;
            };
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["SiteCommandInputBody"];
            };
        };
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["CommandReply"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Not Found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Unprocessable Entity */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Bad Gateway */
            502: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Service Unavailable */
            503: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Gateway Timeout */
            504: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    siteHistory: {
        parameters: {
            query?: {
                /** @description points as hash:id, e.g. comsrv:1:T:5 or inst:3:M:12; repeat or comma-separate */
                point?: string[] | null;
                /** @description Unix seconds, RFC 3339, now or now-<duration> (now-1h) */
                start?: string;
                /** @description as start; default now */
                end?: string;
                /** @description bucket width (1m, 1h); empty: samples as stored */
                step?: string;
                /** @description aggregation per bucket (needs a step; default avg) */
                agg?: "min" | "max" | "avg" | "last" | "count" | "";
                /** @description auto (default), raw, 1m or 1h */
                tier?: string;
            };
            header?: never;
            path: {
                site: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["HistoryOutputBody"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Not Found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Unprocessable Entity */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Not Implemented */
            501: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    siteValues: {
        parameters: {
            query?: {
                /** @description only this hash, e.g. comsrv:1:T or inst:5:M */
                key?: string;
            };
            header?: never;
            path: {
                site: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["ValuesOutputBody"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Not Found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Unprocessable Entity */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    listUsers: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description OK */
            200: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UsersOutputBody"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    createUser: {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        requestBody: {
            content: {
                "application/json": components["schemas"]["CreateUserInputBody"];
            };
        };
        responses: {
            /** @description Created */
            201: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/json": components["schemas"]["UserView"];
                };
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Conflict */
            409: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Unprocessable Entity */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
    deleteUser: {
        parameters: {
            query?: never;
            header?: never;
            path: {
                name: string;
            };
            cookie?: never;
        };
        requestBody?: never;
        responses: {
            /** @description No Content */
            204: {
                headers: {
                    [name: string]: unknown;
                };
                content?: never;
            };
            /** @description Unauthorized */
            401: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Forbidden */
            403: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Not Found */
            404: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Unprocessable Entity */
            422: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
            /** @description Internal Server Error */
            500: {
                headers: {
                    [name: string]: unknown;
                };
                content: {
                    "application/problem+json": components["schemas"]["ErrorModel"];
                };
            };
        };
    };
}
