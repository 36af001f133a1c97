# frozen_string_literal: true

# GET /flags?names=new-checkout,other&variants=banner&user_id=42
# => {"pid":..., "flags":{"new-checkout":true,...}, "variants":{"banner":{"name":"blue","payload":{...}}}}
# Every name given is evaluated once, through Forkflag.client.
class FlagsController < ActionController::API
  DEFAULT_FLAGS = "new-checkout"

  def show
    client = Forkflag.client
    context = request.env["forkflag.context"] || { userId: params[:user_id], remoteAddress: request.remote_ip }
    flags = names(params.fetch(:names, DEFAULT_FLAGS)).to_h { |name| [name, client.enabled?(name, context)] }
    variants = names(params[:variants]).to_h do |name|
      variant = client.variant(name, context)
      [name, { name: variant.name, enabled: variant.enabled?, payload: variant.payload }]
    end
    render json: { pid: Process.pid, flags: flags, variants: variants }
  end

  private

  def names(list)
    list.to_s.split(",").map(&:strip).reject(&:empty?)
  end
end
