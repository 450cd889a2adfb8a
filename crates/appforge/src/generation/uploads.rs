//! Attachments from `appforge-uploads`: a job's reference images read from the uploads of the
//! job's space, as [`GenerationServiceBuilder::attachments`](super::GenerationServiceBuilder::attachments)
//! takes them.

use appforge_core::Owner;
use appforge_llm::Attachment;
use appforge_uploads::{UploadStore, Uploads};
use futures::future::BoxFuture;
use uuid::Uuid;

use super::{AttachmentError, AttachmentLoader};

/// The images of `ids`, in order, read from `owner`'s uploads (never another space's).
///
/// # Errors
///
/// The uploads' error: [`appforge_uploads::Error::NotFound`] for an id that is not an upload
/// of `owner`.
pub async fn load_attachments<S: UploadStore + 'static>(
    uploads: &Uploads<S>,
    owner: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Attachment>, appforge_uploads::Error> {
    let mut attachments = Vec::with_capacity(ids.len());
    for id in ids {
        let (upload, bytes) = uploads.read(owner, *id).await?;
        attachments.push(Attachment::new(
            upload.media_type.as_str(),
            bytes.to_vec(),
            upload.width,
            upload.height,
        ));
    }
    Ok(attachments)
}

/// An [`AttachmentLoader`] over [`Uploads`]: a deleted upload fails the job for good
/// ([`AttachmentError::Gone`]); a storage that cannot answer now retries it.
#[derive(Debug, Clone)]
pub struct UploadedImages<S = appforge_uploads::AnyUploadStore>(pub Uploads<S>);

impl<S: UploadStore + 'static> AttachmentLoader for UploadedImages<S> {
    fn load<'a>(
        &'a self,
        owner: Owner,
        ids: &'a [Uuid],
    ) -> BoxFuture<'a, Result<Vec<Attachment>, AttachmentError>> {
        Box::pin(async move {
            load_attachments(&self.0, owner.id(), ids)
                .await
                .map_err(attachment_error)
        })
    }

    /// From the uploads' metadata: the images are not read.
    fn dimensions<'a>(
        &'a self,
        owner: Owner,
        ids: &'a [Uuid],
    ) -> BoxFuture<'a, Result<Vec<(u32, u32)>, AttachmentError>> {
        Box::pin(async move {
            let mut sizes = Vec::with_capacity(ids.len());
            for id in ids {
                let upload = self
                    .0
                    .get(owner.id(), *id)
                    .await
                    .map_err(attachment_error)?;
                sizes.push((upload.width, upload.height));
            }
            Ok(sizes)
        })
    }
}

fn attachment_error(error: appforge_uploads::Error) -> AttachmentError {
    match error {
        appforge_uploads::Error::NotFound(id) => AttachmentError::Gone(id),
        e => AttachmentError::Unavailable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use appforge_core::Owner;
    use appforge_uploads::{AnyUploadStore, Storage, Uploads};
    use uuid::Uuid;

    use super::{AttachmentError, AttachmentLoader, UploadedImages};

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::DynamicImage::new_rgba8(width, height)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[tokio::test]
    async fn a_jobs_images_come_from_its_own_space_and_a_deleted_one_is_gone() {
        let uploads = Uploads::new(Storage::in_memory(), AnyUploadStore::default());
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let wide = uploads.upload(ada, &png(3, 2), 1 << 20).await.unwrap();
        let tall = uploads.upload(ada, &png(1, 4), 1 << 20).await.unwrap();
        let loader = UploadedImages(uploads.clone());

        let images = loader
            .load(Owner::User(ada), &[tall.id, wide.id])
            .await
            .unwrap();
        let sizes: Vec<_> = images.iter().map(|a| (a.width, a.height)).collect();
        assert_eq!(sizes, [(1, 4), (3, 2)], "in the order asked");
        let owner = Owner::User(ada);
        let read = loader.dimensions(owner, &[tall.id, wide.id]).await.unwrap();
        assert_eq!(
            read, sizes,
            "the sizes from the metadata, in the order asked"
        );

        // Another space never reads them: to its job they are gone.
        let refused = loader.load(Owner::User(bob), &[wide.id]).await.unwrap_err();
        assert_eq!(refused, AttachmentError::Gone(wide.id));
        let refused = loader
            .dimensions(Owner::User(bob), &[wide.id])
            .await
            .unwrap_err();
        assert_eq!(refused, AttachmentError::Gone(wide.id));

        uploads.delete(ada, tall.id).await.unwrap();
        let refused = loader.load(Owner::User(ada), &[tall.id]).await.unwrap_err();
        assert_eq!(refused, AttachmentError::Gone(tall.id));
    }
}
