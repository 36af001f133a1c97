# frozen_string_literal: true

require "rack/request"
require_relative "../forkflag"

module Forkflag
  # Rack integration.
  module Rack
    # The env key the middleware stores the request's context under.
    ENV_KEY = "forkflag.context"

    # Builds a {Forkflag::Context} once per request (user id, session id,
    # remote address, optional properties) and stores it in
    # env["forkflag.context"], for every evaluation the request makes.
    #
    # Place it after the session and authentication middleware:
    #
    #   use Forkflag::Rack::Context,
    #       user_id: ->(env) { env["warden"]&.user&.id },
    #       properties: ->(env) { { plan: env["app.plan"] } }
    #
    #   # in the app
    #   Forkflag.enabled?("new-checkout", Forkflag::Rack.context(env))
    #
    # The remote address is Rack::Request#ip: REMOTE_ADDR, or the client
    # address from X-Forwarded-For when the request came through trusted
    # proxies (Rack's rules: loopback and private addresses).
    class Context
      # env["rack.session"]["user_id"] when there is one.
      DEFAULT_USER_ID = ->(env) { session_value(env, "user_id") }
      # The session's id when a session middleware is in front.
      DEFAULT_SESSION_ID = lambda do |env|
        session = env["rack.session"]
        id = session.id if session.respond_to?(:id)
        id = id.public_id if id.respond_to?(:public_id)
        id || session_value(env, "session_id")
      end

      # @param app [#call]
      # @param user_id [#call] env -> user id (String, Integer or nil)
      # @param session_id [#call] env -> session id
      # @param remote_address [#call] env -> client address
      # @param properties [#call, nil] env -> Hash of custom fields
      def initialize(app, user_id: DEFAULT_USER_ID, session_id: DEFAULT_SESSION_ID,
                     remote_address: ->(env) { ::Rack::Request.new(env).ip }, properties: nil)
        @app = app
        @user_id = user_id
        @session_id = session_id
        @remote_address = remote_address
        @properties = properties
      end

      def call(env)
        env[ENV_KEY] = build(env)
        @app.call(env)
      end

      # The context for a request.
      # @return [Forkflag::Context]
      def build(env)
        fields = {
          user_id: string(@user_id.call(env)),
          session_id: string(@session_id.call(env)),
          remote_address: string(@remote_address.call(env))
        }.compact
        properties = @properties&.call(env)
        fields[:properties] = properties if properties && !properties.empty?
        Forkflag::Context.new(**fields)
      end

      def self.session_value(env, key)
        session = env["rack.session"]
        session[key] if session.respond_to?(:[])
      rescue StandardError
        nil
      end

      private

      def string(value)
        value.nil? || value == "" ? nil : value.to_s
      end
    end

    # The request's context: the one the middleware stored, else one built
    # now (and stored) with the default field readers.
    # @param env [Hash] the Rack env
    # @return [Forkflag::Context]
    def self.context(env)
      env[ENV_KEY] ||= (@default ||= Context.new(nil)).build(env)
    end
  end
end
